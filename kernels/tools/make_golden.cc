// Writes the golden files of every registered kernel,
// <KERNELS_DIR>/<name>/golden/in<a>.bin (one per device input argument) and
// out.bin, and prints the `.golden = {...}` block to paste into each
// kernels/<name>/kernel.cc (items, file names, SHA-256).
//
//   npuk_make_golden kernels [KERNEL...]
//
// Inputs come from a fixed xorshift generator: a kernel with a recipe
// below gets signals chosen to exercise its math (mel: speech-like frames,
// tones, noise, clipping; attention and attention_stream: Gaussian q, k, v at
// realistic scales, the stream units with different masks); any other kernel
// gets 4 items of seeded uniform bytes in every input tensor and its default
// parameters. Outputs are what the kernel's
// reference gives, checked against its CPU path and for all-zero items
// (which the zero guard would reject). A rerun on the same platform writes
// the same bytes. The committed files are the contract: the registry checks
// their SHA-256 at start-up and tests/kernels/golden_test.cc checks that
// the reference still reproduces them.
//
// This tool reads the declarations without the registry's validation
// (which refuses goldens that no longer match), so it also runs when the
// goldens are being regenerated.
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "kernels/attention_stream/attention_stream_units.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/kernel_spec.h"
#include "kernels/registry/registered_kernels.h"

namespace {

namespace fs = std::filesystem;
using npuk::KernelSpec;
using Bytes = std::vector<uint8_t>;

constexpr double kSampleRate = 16000.0;
constexpr size_t kDefaultItems = 4;

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Gaussian() {
    const double u = 1.0 - Uniform();
    return std::sqrt(-2.0 * std::log(u)) *
           std::cos(2.0 * std::numbers::pi * Uniform());
  }

 private:
  uint64_t state_;
};

// A kernel's golden inputs: one plane per input tensor (declaration
// order), items after items, and the parameter values every item carries
// (empty = the declared defaults). A recipe whose items carry different
// records (attention_stream's masks) writes the parameter plane itself, as
// the last plane, and leaves the values empty.
struct Inputs {
  size_t items = 0;
  std::vector<Bytes> planes;
  std::vector<npuk::ParamValue> params;
};

void AppendLe16(Bytes& out, int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  out.push_back(static_cast<uint8_t>(u & 0xFF));
  out.push_back(static_cast<uint8_t>(u >> 8));
}

int16_t ToInt16(double x) {  // x in full-scale units
  const double s = std::nearbyint(x * 32768.0);
  return static_cast<int16_t>(s > 32767 ? 32767 : (s < -32768 ? -32768 : s));
}

double Tone(double hz, int n) {
  return std::sin(2.0 * std::numbers::pi * hz * n / kSampleRate);
}

// mel: 8 frames of 400 samples: a voiced speech-like frame, a
// fricative-like frame, two tones, a chirp, a clipped square wave, loud
// white noise, a quiet frame and impulses over DC.
Inputs MelRecipe() {
  constexpr int kFrames = 8;
  constexpr int kSamples = 400;
  Rng rng(0x6d656c31);
  std::vector<int16_t> in;
  for (int frame = 0; frame < kFrames; ++frame) {
    for (int n = 0; n < kSamples; ++n) {
      double x = 0;
      switch (frame) {
        case 0:  // voiced: 120 Hz harmonics shaped by formants 700/1200/2600
          for (int h = 1; h * 120.0 < 7800.0; ++h) {
            const double f = h * 120.0;
            const double gain = 1.0 / (1.0 + std::pow((f - 700) / 150, 2)) +
                                0.5 / (1.0 + std::pow((f - 1200) / 200, 2)) +
                                0.2 / (1.0 + std::pow((f - 2600) / 300, 2));
            x += 0.08 * gain * Tone(f, n + 17 * h);
          }
          x += 0.002 * rng.Gaussian();
          break;
        case 1:  // fricative: noise with a high-pass tilt
          x = 0.05 * rng.Gaussian();
          break;
        case 2:  // two tones
          x = 0.3 * Tone(440.0, n) + 0.05 * Tone(3150.0, n);
          break;
        case 3:  // linear chirp 100 Hz -> 7 kHz over the frame
          x = 0.5 * std::sin(2.0 * std::numbers::pi *
                             (100.0 * n + 0.5 * 6900.0 * n * n / 400.0) /
                             kSampleRate);
          break;
        case 4:  // clipping square wave at 1 kHz
          x = Tone(1000.0, n) >= 0 ? 1.0 : -1.0;
          break;
        case 5:  // white noise, loud
          x = 0.25 * rng.Gaussian();
          break;
        case 6:  // quiet: -60 dBFS tone plus low noise
          x = 0.001 * Tone(250.0, n) + 0.0001 * rng.Gaussian();
          break;
        default:  // impulses every 80 samples over DC
          x = 0.1 + (n % 80 == 3 ? 0.8 : 0.0);
          break;
      }
      if (frame == 1 && n > 0) {
        // First difference tilts the noise spectrum toward high frequencies.
        x = x - 0.9 * (in.back() / 32768.0);
      }
      in.push_back(ToInt16(x));
    }
  }
  Inputs p{kFrames, {Bytes()}, {}};
  for (int16_t s : in) AppendLe16(p.planes[0], s);
  return p;
}

constexpr int kQkvItems = 4;
constexpr int kMatrix = 64 * 64;

// kQkvItems items of Gaussian q, k, v 64 x 64 each (sigma 1, 1.5, 2, 3 per
// item), item after item (q, then k, then v), and in *scale the one
// quantisation scale s = max |x| / 127 of them all.
std::vector<double> GaussianQkv(uint64_t seed, double* scale) {
  Rng rng(seed);
  const double sigma[kQkvItems] = {1.0, 1.5, 2.0, 3.0};
  std::vector<double> x;
  for (int t = 0; t < kQkvItems; ++t) {
    for (int i = 0; i < 3 * kMatrix; ++i)
      x.push_back(sigma[t] * rng.Gaussian());
  }
  double max_abs = 0;
  for (double v : x) max_abs = std::fmax(max_abs, std::fabs(v));
  *scale = max_abs / 127.0;
  return x;
}

// attention: 4 tiles of Gaussian q, k, v quantised with one scale s for
// every tensor of every tile, and score_scale = s^2 / 8 (s_q s_k / 8 of
// realistic data, about 0.0125) for every tile.
Inputs AttentionRecipe() {
  constexpr int kTiles = kQkvItems;
  double s = 0;
  const std::vector<double> x = GaussianQkv(0x6174746e, &s);
  // The exact value of the quantised scale, so a client sending it (the
  // declaration's golden.params) encodes the same record.
  const double score_scale =
      npuk::ScoreScaleValue(npuk::QuantizeScoreScale(s * s / 8.0));
  Inputs p{kTiles, std::vector<Bytes>(3), {npuk::ParamValue(score_scale)}};
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t tensor = (i % (3 * kMatrix)) / kMatrix;
    p.planes[tensor].push_back(
        static_cast<uint8_t>(static_cast<int8_t>(std::nearbyint(x[i] / s))));
  }
  return p;
}

// attention_stream: the 4 units (one round) of 2 heads of causal attention,
// lq = 100 queries over lk = 150 keys, Gaussian q, k, v quantised with one
// scale s, score_scale = s^2 / 8 and output scale 0.5: whole and partial
// query tiles (64 and 36 rows), a partial last key tile (22 keys), the
// causal diagonal, and a lane with a padding step (query tile 0 takes 2 key
// tiles, the round 3). The records are the attention model's
// (attention_stream_units.h).
Inputs AttentionStreamRecipe() {
  constexpr int32_t kHeads = 2;
  constexpr int32_t kLq = 100;
  constexpr int32_t kLk = 150;
  Rng rng(0x61747374);
  std::vector<double> x(static_cast<size_t>(kHeads) * (kLq + 2 * kLk) * 64);
  double peak = 0;
  for (double& v : x) {
    v = 1.5 * rng.Gaussian();
    peak = std::max(peak, std::abs(v));
  }
  const double s = peak / 127.0;
  std::vector<int8_t> q8(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    q8[i] = static_cast<int8_t>(std::nearbyint(x[i] / s));
  }
  const size_t q_size = static_cast<size_t>(kHeads) * kLq * 64;
  const size_t k_size = static_cast<size_t>(kHeads) * kLk * 64;
  const npuk::stream::Problem problem{q8.data(),
                                      q8.data() + q_size,
                                      q8.data() + q_size + k_size,
                                      kHeads,
                                      kLq,
                                      kLk,
                                      true,
                                      npuk::QuantizeScoreScale(s * s / 8.0),
                                      npuk::online::QuantizeOutputScale(0.5)};
  const size_t units = npuk::stream::UnitCount(problem);
  Inputs p{npuk::stream::UnitItems(units), std::vector<Bytes>(3), {}};
  p.planes[0].resize(p.items * npuk::kStreamMatrixBytes);
  p.planes[1].resize(npuk::stream::UnitStepBytes(problem, 0, units));
  p.planes[2].resize(p.items * npuk::kStreamRecordBytes);
  npuk::stream::WriteUnits(problem, 0, units, p.planes[0].data(),
                           p.planes[2].data(), p.planes[1].data());
  return p;
}

// Any other kernel: seeded uniform bytes (integer tensors) or uniform
// values in [-1, 1) (FP32 tensors), seeded by the kernel's name.
Inputs GenericRecipe(const KernelSpec& spec) {
  uint64_t seed = 0xcbf29ce484222325;  // FNV-1a of the name
  for (const char c : spec.name) {
    seed = (seed ^ static_cast<uint8_t>(c)) * 0x100000001b3;
  }
  Rng rng(seed | 1);
  Inputs p{kDefaultItems, {}, {}};
  for (const npuk::TensorDecl& t : spec.inputs) {
    Bytes plane;
    for (size_t i = 0; i < kDefaultItems * t.item_elements() + t.halo; ++i) {
      if (t.dtype == npuk::DType::kFp32) {
        const float f = static_cast<float>(2.0 * rng.Uniform() - 1.0);
        uint8_t b[4];
        std::memcpy(b, &f, 4);
        plane.insert(plane.end(), b, b + 4);
      } else {
        for (size_t b = 0; b < npuk::DTypeBytes(t.dtype); ++b) {
          plane.push_back(static_cast<uint8_t>(rng.Next() >> 56));
        }
      }
    }
    p.planes.push_back(std::move(plane));
  }
  return p;
}

// mel_pcm, mel128_pcm: the mel recipe's 8 frames played back to back as
// one PCM stream (3200 samples), cut to the 18 windows at a 160-sample hop
// that fit (18 * 160 + 240 = 3120 samples), so windows straddle the
// recipe's frame boundaries.
Inputs PcmRecipe() {
  constexpr size_t kItems = 18;
  Inputs p = MelRecipe();
  p.items = kItems;
  p.planes[0].resize((kItems * 160 + 240) * 2);
  return p;
}

// The planes of the golden request: the recipe's tensors, then (when the
// kernel has parameters) the parameter plane, one encoded record per item.
// *params gets the recipe's parameter values (empty = the defaults).
// Empty on an error, which is printed.
std::vector<Bytes> PlanesFor(const KernelSpec& spec, size_t* items,
                             std::vector<npuk::ParamValue>* params) {
  // mel128 runs the same frames through Whisper large-v3's filterbank.
  Inputs p = spec.name == "mel" || spec.name == "mel128"           ? MelRecipe()
             : spec.name == "mel_pcm" || spec.name == "mel128_pcm" ? PcmRecipe()
             : spec.name == "attention"        ? AttentionRecipe()
             : spec.name == "attention_stream" ? AttentionStreamRecipe()
                                               : GenericRecipe(spec);
  *params = p.params;
  *items = p.items;
  if (spec.param_bytes > 0 && p.planes.size() < spec.plane_count()) {
    const std::vector<npuk::ParamValue> values =
        p.params.empty() ? npuk::DefaultParams(spec) : p.params;
    Bytes record(spec.param_bytes);
    if (absl::Status s = spec.encode_params(values, record); !s.ok()) {
      std::fprintf(stderr, "%s: the golden parameters are refused: %s\n",
                   spec.name.c_str(), std::string(s.message()).c_str());
      return {};
    }
    Bytes plane;
    for (size_t i = 0; i < p.items; ++i) {
      plane.insert(plane.end(), record.begin(), record.end());
    }
    p.planes.push_back(std::move(plane));
  }
  return std::move(p.planes);
}

std::string Sha256Hex(std::span<const uint8_t> bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

bool WriteFile(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out.flush());
}

// The SHA-256 split in two string literals, as clang-format leaves it.
std::string Literal(const std::string& sha) {
  return absl::StrCat("\"", sha.substr(0, 32), "\"\n              \"",
                      sha.substr(32), "\"");
}

// Generates, checks and writes one kernel's goldens; prints its block.
bool Generate(const KernelSpec& spec, const fs::path& kernels_dir) {
  size_t items = 0;
  std::vector<npuk::ParamValue> params;
  const std::vector<Bytes> owned = PlanesFor(spec, &items, &params);
  if (owned.size() != spec.plane_count()) {
    std::fprintf(stderr,
                 "%s: the recipe makes %zu planes, the kernel has %zu\n",
                 spec.name.c_str(), owned.size(), spec.plane_count());
    return false;
  }
  for (size_t i = 0; i < owned.size(); ++i) {
    if (i == spec.stepped_plane()) continue;  // checked below
    if (owned[i].size() != spec.plane_span(i, items)) {
      std::fprintf(stderr, "%s: plane %zu has %zu bytes, want %zu\n",
                   spec.name.c_str(), i, owned[i].size(),
                   spec.plane_span(i, items));
      return false;
    }
  }
  const std::vector<std::span<const uint8_t>> planes(owned.begin(),
                                                     owned.end());
  if (spec.is_stepped() && (items % spec.step_lanes() != 0 ||
                            owned[spec.stepped_plane()].size() !=
                                npuk::StepSpanOfPlanes(spec, planes, items))) {
    std::fprintf(stderr,
                 "%s: the stepped plane has %zu bytes, its records give %zu "
                 "(in whole rounds of %zu items)\n",
                 spec.name.c_str(), owned[spec.stepped_plane()].size(),
                 npuk::StepSpanOfPlanes(spec, planes, items),
                 spec.step_lanes());
    return false;
  }
  std::vector<Bytes> args(spec.device_args.size());
  std::vector<const uint8_t*> in;
  for (size_t a = 0; a < args.size(); ++a) {
    args[a].resize(a == spec.stepped_arg()
                       ? npuk::StepSpanOfPlanes(spec, planes, items)
                       : spec.arg_span(a, items));
    npuk::GatherArg(spec, a, planes, 0, items, args[a].data());
    in.push_back(args[a].data());
  }
  Bytes out(items * spec.output_bytes());
  spec.reference(in.data(), out.data(), items);
  Bytes cpu(out.size());
  spec.cpu(in.data(), cpu.data(), items);
  if (cpu != out) {
    std::fprintf(stderr,
                 "%s: the CPU path differs from the reference on the golden "
                 "inputs; fix the CPU path before regenerating\n",
                 spec.name.c_str());
    return false;
  }
  for (size_t i = 0; i < items; ++i) {
    const uint8_t* item = out.data() + i * spec.output_bytes();
    bool zero = true;
    for (size_t b = 0; b < spec.output_bytes() && zero; ++b) zero = !item[b];
    if (zero) {
      std::fprintf(stderr,
                   "%s: golden %s %zu gives an all-zero output, which the "
                   "zero guard would reject; change its recipe\n",
                   spec.name.c_str(), spec.unit.c_str(), i);
      return false;
    }
  }

  const fs::path dir = kernels_dir / spec.name / "golden";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr,
                 "cannot create %s (%s): give the kernels/ directory of the "
                 "source tree\n",
                 dir.c_str(), ec.message().c_str());
    return false;
  }
  std::string inputs;
  for (size_t a = 0; a < args.size(); ++a) {
    const std::string file = absl::StrCat("in", a, ".bin");
    if (!WriteFile(dir / file, args[a])) {
      std::fprintf(stderr, "cannot write %s\n", (dir / file).c_str());
      return false;
    }
    absl::StrAppend(&inputs, a ? ",\n             " : "", "{\"", file, "\",\n",
                    "              ", Literal(Sha256Hex(args[a])),
                    ",\n              NPUK_EMBEDDED(", spec.name, ", in", a,
                    ")}");
  }
  if (!WriteFile(dir / "out.bin", out)) {
    std::fprintf(stderr, "cannot write %s\n", (dir / "out.bin").c_str());
    return false;
  }
  // The recipe's parameter values, as C++ literals (a double in hex, so the
  // pasted value is bit-exact).
  std::string param_line;
  if (!params.empty()) {
    std::vector<std::string> literals;
    for (const npuk::ParamValue& v : params) {
      if (const double* d = std::get_if<double>(&v)) {
        literals.push_back(absl::StrFormat("%a", *d));
      } else if (const int64_t* i = std::get_if<int64_t>(&v)) {
        literals.push_back(absl::StrFormat("int64_t{%d}", *i));
      } else {
        literals.push_back(std::get<bool>(v) ? "true" : "false");
      }
    }
    param_line = absl::StrCat(",\n           .params = {",
                              absl::StrJoin(literals, ", "), "}");
  }
  std::printf(
      "// %s: %zu %s -> %s\n.golden = {.items = %zu,\n"
      "           .inputs = {%s},\n"
      "           .output = {\"out.bin\",\n              %s,\n"
      "              NPUK_EMBEDDED(%s, out)}%s},\n\n",
      spec.name.c_str(), items,
      items == 1 ? spec.unit.c_str() : spec.units.c_str(), dir.c_str(), items,
      inputs.c_str(), Literal(Sha256Hex(out)).c_str(), spec.name.c_str(),
      param_line.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s KERNELS_DIR [KERNEL...]\n"
                 "  writes KERNELS_DIR/<kernel>/golden/{in<a>,out}.bin of "
                 "every registered kernel (or those named) and prints the\n"
                 "  .golden block for each kernels/<kernel>/kernel.cc; run "
                 "from the source tree as: npuk_make_golden kernels\n",
                 argv[0]);
    return 2;
  }
  const fs::path kernels_dir = argv[1];
  const std::vector<std::string> only(argv + 2, argv + argc);
  const std::vector<const KernelSpec*> all = npuk::RegisteredKernels();
  for (const std::string& name : only) {
    bool found = false;
    for (const KernelSpec* spec : all) found = found || spec->name == name;
    if (!found) {
      std::fprintf(stderr, "no registered kernel \"%s\"\n", name.c_str());
      return 2;
    }
  }
  for (const KernelSpec* spec : all) {
    bool wanted = only.empty();
    for (const std::string& name : only) wanted = wanted || spec->name == name;
    if (wanted && !Generate(*spec, kernels_dir)) return 1;
  }
  return 0;
}
