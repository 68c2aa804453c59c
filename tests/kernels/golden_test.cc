// Every registered kernel's committed golden files must still be what its
// reference and its CPU path produce, and the bytes embedded in the binary
// must be the files the declaration's SHA-256 names. A change to a kernel's
// math that alters any output byte fails here and requires regenerating
// with `npuk_make_golden kernels` (and telling the NPU bring-up and the
// health canaries, which replay these bytes).
#include <openssl/sha.h>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

std::string Sha256Hex(std::span<const uint8_t> bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::vector<const uint8_t*> GoldenArgs(const KernelSpec& spec) {
  std::vector<const uint8_t*> in;
  for (const GoldenFile& f : spec.golden.inputs) in.push_back(f.bytes.data());
  return in;
}

// The first differing item, or -1.
long FirstDifferingItem(const KernelSpec& spec,
                        const std::vector<uint8_t>& got) {
  const std::span<const uint8_t> want = spec.golden.output.bytes;
  for (size_t i = 0; i < spec.golden.items; ++i) {
    const size_t at = i * spec.output_bytes();
    if (std::memcmp(got.data() + at, want.data() + at, spec.output_bytes())) {
      return static_cast<long>(i);
    }
  }
  return -1;
}

std::string Regenerate(const KernelSpec& spec) {
  return "regenerate with `npuk_make_golden kernels " + spec.name +
         "` and paste its .golden block into kernels/" + spec.name +
         "/kernel.cc if the change to the kernel math is intended";
}

// The bytes of golden argument a: arg_span, or for a stepped argument the
// steps its records give.
size_t GoldenArgBytes(const KernelSpec& spec, size_t a) {
  if (a != spec.stepped_arg()) return spec.arg_span(a, spec.golden.items);
  std::vector<const uint8_t*> args;
  for (const GoldenFile& f : spec.golden.inputs) args.push_back(f.bytes.data());
  return StepSpanOfArgs(spec, args.data(), spec.golden.items);
}

class GoldenTest : public ::testing::TestWithParam<const KernelSpec*> {};

TEST_P(GoldenTest, ShapesMatchTheDeclaration) {
  const KernelSpec& spec = *GetParam();
  const Golden& g = spec.golden;
  EXPECT_GE(g.items, 2u) << "a canary of one item misses batching mistakes";
  ASSERT_EQ(g.inputs.size(), spec.device_args.size());
  for (size_t a = 0; a < g.inputs.size(); ++a) {
    EXPECT_EQ(g.inputs[a].file, "in" + std::to_string(a) + ".bin");
    EXPECT_EQ(g.inputs[a].bytes.size(), GoldenArgBytes(spec, a));
  }
  EXPECT_EQ(g.output.file, "out.bin");
  EXPECT_EQ(g.output.bytes.size(), g.items * spec.output_bytes());
}

TEST_P(GoldenTest, EmbeddedBytesHaveTheDeclaredSha256) {
  const KernelSpec& spec = *GetParam();
  for (const GoldenFile& f : spec.golden.inputs) {
    EXPECT_EQ(Sha256Hex(f.bytes), f.sha256) << spec.name << "/" << f.file;
  }
  EXPECT_EQ(Sha256Hex(spec.golden.output.bytes), spec.golden.output.sha256)
      << spec.name << "/out.bin";
}

TEST_P(GoldenTest, ReferenceReproducesCommittedBytes) {
  const KernelSpec& spec = *GetParam();
  const std::vector<const uint8_t*> in = GoldenArgs(spec);
  std::vector<uint8_t> out(spec.golden.output.bytes.size(), 0xA5);
  spec.reference(in.data(), out.data(), spec.golden.items);
  EXPECT_EQ(FirstDifferingItem(spec, out), -1)
      << spec.name << " golden " << spec.unit << " differs; "
      << Regenerate(spec);
}

TEST_P(GoldenTest, CpuPathReproducesCommittedBytes) {
  const KernelSpec& spec = *GetParam();
  const std::vector<const uint8_t*> in = GoldenArgs(spec);
  std::vector<uint8_t> out(spec.golden.output.bytes.size(), 0x5A);
  spec.cpu(in.data(), out.data(), spec.golden.items);
  EXPECT_EQ(FirstDifferingItem(spec, out), -1)
      << spec.name << " golden " << spec.unit
      << " differs on the CPU path: it must be byte-identical to the "
         "reference";
}

// The zero guard treats an all-zero output item as a device fault, so no
// canary item may legitimately be all zero.
TEST_P(GoldenTest, NoOutputItemIsAllZero) {
  const KernelSpec& spec = *GetParam();
  for (size_t i = 0; i < spec.golden.items; ++i) {
    const std::span<const uint8_t> item = spec.golden.output.bytes.subspan(
        i * spec.output_bytes(), spec.output_bytes());
    bool zero = true;
    for (uint8_t b : item) zero = zero && b == 0;
    EXPECT_FALSE(zero) << spec.name << " golden " << spec.unit << " " << i;
  }
}

// The canaries turn golden device bytes back into a request
// (ScatterArg) and the batcher gathers them again (GatherArg): the round
// trip must give the device bytes back, and one item at a time through
// ReferenceItem must give the golden output.
TEST_P(GoldenTest, PlanesRoundTripAndReferenceItemAgrees) {
  const KernelSpec& spec = *GetParam();
  const size_t items = spec.golden.items;
  std::vector<std::vector<uint8_t>> planes(spec.plane_count());
  std::vector<std::span<uint8_t>> views;
  for (size_t p = 0; p < planes.size(); ++p) {
    planes[p].resize(spec.plane_span(p, items));
    views.emplace_back(planes[p]);
  }
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    ScatterArg(spec, a, spec.golden.inputs[a].bytes.data(), items, views);
  }
  const std::vector<std::span<const uint8_t>> cviews(planes.begin(),
                                                     planes.end());
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    std::vector<uint8_t> arg(GoldenArgBytes(spec, a));
    GatherArg(spec, a, cviews, 0, items, arg.data());
    EXPECT_TRUE(
        std::equal(arg.begin(), arg.end(), spec.golden.inputs[a].bytes.begin()))
        << spec.name << " argument " << a;
  }
  std::vector<uint8_t> out(spec.output_bytes());
  for (size_t i = 0; i < items; ++i) {
    ReferenceItem(spec, cviews, i, out.data());
    EXPECT_EQ(0, std::memcmp(
                     out.data(),
                     spec.golden.output.bytes.data() + i * spec.output_bytes(),
                     out.size()))
        << spec.name << " item " << i;
  }
}

// golden.params is what a client sends to replay the golden over the wire
// (npukctl health --deep): its encoding must be every item's record. An
// internal kernel is not on the wire, and its items may carry records the
// parameters cannot express (attention_stream's masks): it has none.
TEST_P(GoldenTest, GoldenParamsEncodeToTheParameterPlane) {
  const KernelSpec& spec = *GetParam();
  if (spec.param_bytes == 0 || spec.internal) {
    EXPECT_TRUE(spec.golden.params.empty()) << spec.name;
    return;
  }
  const std::vector<ParamValue> values =
      spec.golden.params.empty() ? DefaultParams(spec) : spec.golden.params;
  ASSERT_EQ(values.size(), spec.params.size());
  std::vector<uint8_t> record(spec.param_bytes);
  ASSERT_TRUE(spec.encode_params(values, record).ok()) << spec.name;
  const size_t items = spec.golden.items;
  std::vector<std::vector<uint8_t>> planes(spec.plane_count());
  std::vector<std::span<uint8_t>> views;
  for (size_t p = 0; p < planes.size(); ++p) {
    planes[p].resize(spec.plane_span(p, items));
    views.emplace_back(planes[p]);
  }
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    ScatterArg(spec, a, spec.golden.inputs[a].bytes.data(), items, views);
  }
  const std::vector<uint8_t>& param_plane = planes.back();
  for (size_t i = 0; i < items; ++i) {
    EXPECT_TRUE(std::equal(record.begin(), record.end(),
                           param_plane.begin() + i * spec.param_bytes))
        << spec.name << " item " << i
        << ": golden.params does not encode to the committed record";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Registered, GoldenTest, ::testing::ValuesIn(AllKernels()),
    [](const ::testing::TestParamInfo<const KernelSpec*>& info) {
      return info.param->name;
    });

TEST(GoldenKernelsTest, TheShippedKernelsAreRegistered) {
  for (const char* name : {"mel", "attention", "passthrough"}) {
    EXPECT_NE(FindKernel(name), nullptr) << name;
  }
}

// Kernel-specific properties of the committed vectors.
TEST(GoldenKernelsTest, MelHasEnoughFrames) {
  const KernelSpec* mel = FindKernel("mel");
  ASSERT_NE(mel, nullptr);
  EXPECT_GE(mel->golden.items, 4u);
}

TEST(GoldenKernelsTest, AttentionScaleIsInRangeAndStable) {
  const KernelSpec* att = FindKernel("attention");
  ASSERT_NE(att, nullptr);
  ASSERT_EQ(att->golden.inputs.size(), 2u);
  const std::span<const uint8_t> records = att->golden.inputs[1].bytes;
  ASSERT_EQ(records.size(), att->golden.items * sizeof(ScoreScale));
  for (size_t i = 0; i < att->golden.items; ++i) {
    ScoreScale scale;
    std::memcpy(&scale, records.data() + i * sizeof(scale), sizeof(scale));
    EXPECT_TRUE(ScoreScaleInRange(ScoreScaleValue(scale))) << "tile " << i;
    const ScoreScale again = QuantizeScoreScale(ScoreScaleValue(scale));
    EXPECT_EQ(again.multiplier, scale.multiplier) << "tile " << i;
    EXPECT_EQ(again.shift, scale.shift) << "tile " << i;
  }
}

TEST(GoldenKernelsTest, PassthroughOutputIsItsInput) {
  const KernelSpec* pt = FindKernel("passthrough");
  ASSERT_NE(pt, nullptr);
  ASSERT_EQ(pt->golden.inputs.size(), 1u);
  EXPECT_TRUE(std::equal(
      pt->golden.inputs[0].bytes.begin(), pt->golden.inputs[0].bytes.end(),
      pt->golden.output.bytes.begin(), pt->golden.output.bytes.end()));
}

}  // namespace
}  // namespace npuk
