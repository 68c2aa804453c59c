#include "server/device/cpu/cpu_device.h"

#include <cstring>
#include <random>
#include <span>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

const KernelSpec& Kernel(const char* name) { return *FindKernel(name); }

void FillRandom(absl::Span<uint8_t> bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
}

// Writes per-item parameter records into the executor's parameter
// argument (attention's score scale varies per tile).
void FillParams(const KernelSpec& spec, Executor& ex, size_t n) {
  if (spec.param_bytes == 0) return;
  // The parameter plane is the last plane; find the argument that holds it.
  const size_t plane = spec.inputs.size();
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    size_t offset = 0;
    for (size_t p : spec.device_args[a]) {
      if (p == plane) {
        for (size_t i = 0; i < n; ++i) {
          std::vector<ParamValue> values = DefaultParams(spec);
          if (spec.name == "attention") {
            values[0] = 0.001 * static_cast<double>(i + 1);
          }
          ASSERT_TRUE(
              spec.encode_params(values, std::span<uint8_t>(
                                             ex.input(a).data() +
                                                 i * spec.arg_bytes(a) + offset,
                                             spec.param_bytes))
                  .ok());
        }
      }
      offset += spec.plane_bytes(p);
    }
  }
}

// What spec.reference gives for the first n items of the executor's inputs.
std::vector<uint8_t> Reference(const KernelSpec& spec, Executor& ex, size_t n) {
  std::vector<const uint8_t*> in;
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    in.push_back(ex.input(a).data());
  }
  std::vector<uint8_t> out(n * spec.output_bytes());
  spec.reference(in.data(), out.data(), n);
  return out;
}

TEST(CpuDeviceTest, NameIsCpu) { EXPECT_EQ(NewCpuDevice(1)->name(), "cpu"); }

TEST(CpuDeviceTest, RejectsZeroMaxItems) {
  auto device = NewCpuDevice(1);
  EXPECT_EQ(device->CreateExecutor(Kernel("mel"), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CpuDeviceTest, RejectsAKernelWithoutCpuPath) {
  KernelSpec no_cpu = Kernel("passthrough");
  no_cpu.cpu = nullptr;
  auto device = NewCpuDevice(1);
  absl::Status s = device->CreateExecutor(no_cpu, 4).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("KernelSpec::cpu"), absl::string_view::npos) << s;
}

TEST(CpuDeviceTest, BuffersAreSizedOncePerDeviceArgument) {
  auto device = NewCpuDevice(2);
  const KernelSpec& att = Kernel("attention");
  auto exec = device->CreateExecutor(att, 5);
  ASSERT_TRUE(exec.ok()) << exec.status();
  EXPECT_EQ(&(*exec)->kernel(), &att);
  EXPECT_EQ((*exec)->max_items(), 5u);
  EXPECT_EQ((*exec)->input(0).size(), 5u * 12288);
  EXPECT_EQ((*exec)->input(1).size(), 5u * 8);
  EXPECT_EQ((*exec)->output().size(), 5u * 4096);
  const uint8_t* in0 = (*exec)->input(0).data();
  const uint8_t* in1 = (*exec)->input(1).data();
  const uint8_t* out = (*exec)->output().data();
  FillRandom((*exec)->input(0), 1);
  FillParams(att, **exec, 5);
  ASSERT_TRUE((*exec)->Run(5).ok());
  EXPECT_EQ((*exec)->input(0).data(), in0);
  EXPECT_EQ((*exec)->input(1).data(), in1);
  EXPECT_EQ((*exec)->output().data(), out);
}

TEST(CpuDeviceTest, RunOutsideContractIsInternalError) {
  auto device = NewCpuDevice(1);
  auto mel = device->CreateExecutor(Kernel("mel"), 4);
  ASSERT_TRUE(mel.ok());
  EXPECT_EQ((*mel)->Run(0).code(), absl::StatusCode::kInternal);
  EXPECT_EQ((*mel)->Run(5).code(), absl::StatusCode::kInternal);
}

struct Param {
  const char* kernel;
  int threads;
};

class CpuDeviceMatchesReference : public ::testing::TestWithParam<Param> {};

// Every batch size around the kernel's quantum, split over the pool, gives
// the reference's bytes (attention with a different scale per tile).
TEST_P(CpuDeviceMatchesReference, EveryBatchSize) {
  const KernelSpec& spec = Kernel(GetParam().kernel);
  auto device = NewCpuDevice(GetParam().threads);
  constexpr size_t kMax = 37;
  auto exec = device->CreateExecutor(spec, kMax);
  ASSERT_TRUE(exec.ok());
  for (size_t n :
       {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{24}, kMax}) {
    for (size_t a = 0; a < spec.device_args.size(); ++a) {
      FillRandom((*exec)->input(a), static_cast<uint32_t>(n * 10 + a));
    }
    FillParams(spec, **exec, n);
    ASSERT_TRUE((*exec)->Run(n).ok());
    const std::vector<uint8_t> want = Reference(spec, **exec, n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(0,
                std::memcmp(want.data() + i * spec.output_bytes(),
                            (*exec)->output().data() + i * spec.output_bytes(),
                            spec.output_bytes()))
          << spec.name << " item " << i << " of " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    KernelsAndThreads, CpuDeviceMatchesReference,
    ::testing::Values(Param{"mel", 0}, Param{"mel", 1}, Param{"mel", 2},
                      Param{"mel", 4}, Param{"attention", 0},
                      Param{"attention", 1}, Param{"attention", 2},
                      Param{"attention", 4}, Param{"passthrough", 1},
                      Param{"passthrough", 4}),
    [](const ::testing::TestParamInfo<Param>& info) {
      return std::string(info.param.kernel) + "_" +
             std::to_string(info.param.threads) + "threads";
    });

TEST(CpuDeviceTest, GoldenVectorsOfEveryKernel) {
  auto device = NewCpuDevice(2);
  for (const KernelSpec* spec : AllKernels()) {
    const size_t n = spec->golden.items;
    auto exec = device->CreateExecutor(*spec, n);
    ASSERT_TRUE(exec.ok()) << spec->name << ": " << exec.status();
    for (size_t a = 0; a < spec->device_args.size(); ++a) {
      const GoldenFile& f = spec->golden.inputs[a];
      // A stepped argument's buffer holds the most steps n items can take.
      if (a == spec->stepped_arg()) {
        ASSERT_LE(f.bytes.size(), (*exec)->input(a).size()) << spec->name;
      } else {
        ASSERT_EQ(f.bytes.size(), (*exec)->input(a).size()) << spec->name;
      }
      std::memcpy((*exec)->input(a).data(), f.bytes.data(), f.bytes.size());
    }
    ASSERT_TRUE((*exec)->Run(n).ok());
    EXPECT_EQ(std::vector<uint8_t>((*exec)->output().begin(),
                                   (*exec)->output().end()),
              std::vector<uint8_t>(spec->golden.output.bytes.begin(),
                                   spec->golden.output.bytes.end()))
        << spec->name;
  }
}

TEST(CpuDeviceTest, PassthroughReturnsItsInput) {
  const KernelSpec& spec = Kernel("passthrough");
  auto device = NewCpuDevice(2);
  auto exec = device->CreateExecutor(spec, 9);
  ASSERT_TRUE(exec.ok());
  FillRandom((*exec)->input(0), 5);
  ASSERT_TRUE((*exec)->Run(9).ok());
  EXPECT_EQ(0, std::memcmp((*exec)->input(0).data(), (*exec)->output().data(),
                           9 * spec.output_bytes()));
}

class CpuDeviceThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(CpuDeviceThreadsTest, ExecutorsRunConcurrently) {
  const KernelSpec& mel = Kernel("mel");
  auto device = NewCpuDevice(GetParam());
  auto a = device->CreateExecutor(mel, 16);
  auto b = device->CreateExecutor(mel, 16);
  ASSERT_TRUE(a.ok() && b.ok());
  FillRandom((*a)->input(0), 7);
  std::memcpy((*b)->input(0).data(), (*a)->input(0).data(), 16 * 800);
  std::thread t([&] {
    for (int i = 0; i < 20; ++i) ASSERT_TRUE((*b)->Run(16).ok());
  });
  for (int i = 0; i < 20; ++i) ASSERT_TRUE((*a)->Run(16).ok());
  t.join();
  EXPECT_EQ(0,
            std::memcmp((*a)->output().data(), (*b)->output().data(), 16 * 80));
}

INSTANTIATE_TEST_SUITE_P(Threads, CpuDeviceThreadsTest,
                         ::testing::Values(0, 1, 2, 4));

}  // namespace
}  // namespace npuk
