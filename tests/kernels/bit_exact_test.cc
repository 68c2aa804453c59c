// The CPU backend's fast path must equal the kernel entries byte for byte:
// for every registered kernel on random items at batch sizes around its CPU
// quantum, and for mel and attention >= 10^5 random frames and tiles plus
// the edge cases of issue 2. One differing byte fails.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numbers>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/attention/attention_cpu.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/attention/attention_kernel_vec.h"
#include "kernels/common/mel_tables.h"
#include "kernels/common/score_scale.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/mel/mel_kernel_vec.h"
#include "kernels/mel128/mel128_kernel.h"
#include "kernels/mel128_pcm/mel128_pcm_kernel.h"
#include "kernels/mel_pcm/mel_pcm_kernel.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

// Sanitizer builds are ~20x slower; they still run every edge case and a
// share of the random items (NPUK_BIT_EXACT_ITEMS overrides).
size_t RandomItems(size_t full) {
  if (const char* env = std::getenv("NPUK_BIT_EXACT_ITEMS")) {
    return std::strtoull(env, nullptr, 10);
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return full / 50;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return full / 50;
#endif
#endif
  return full;
}

// ------------------------------------------------------ every kernel ----

// spec.cpu against spec.reference on seeded random tensor bytes and the
// default parameters, at batch sizes that split the CPU path's groups and
// thread chunks (cpu_quantum) every way.
TEST(EveryKernelBitExactTest, CpuPathEqualsReferenceOnRandomItems) {
  for (const KernelSpec* spec : AllKernels()) {
    const size_t q = spec->cpu_quantum;
    std::vector<size_t> sizes = {1, 2, q, q + 1, 3 * q + 5, 37};
    if (q > 1) sizes.push_back(q - 1);
    std::mt19937_64 rng(7);
    std::vector<uint8_t> record(spec->param_bytes);
    if (spec->param_bytes > 0) {
      ASSERT_TRUE(spec->encode_params(DefaultParams(*spec), record).ok())
          << spec->name;
    }
    for (size_t n : sizes) {
      std::vector<std::vector<uint8_t>> planes(spec->plane_count());
      for (size_t p = 0; p < planes.size(); ++p) {
        if (p < spec->inputs.size()) {
          planes[p].resize(spec->plane_span(p, n));
          for (uint8_t& b : planes[p]) b = static_cast<uint8_t>(rng());
        } else {
          for (size_t i = 0; i < n; ++i) {
            planes[p].insert(planes[p].end(), record.begin(), record.end());
          }
        }
      }
      const std::vector<std::span<const uint8_t>> views(planes.begin(),
                                                        planes.end());
      std::vector<std::vector<uint8_t>> args(spec->device_args.size());
      std::vector<const uint8_t*> in;
      for (size_t a = 0; a < args.size(); ++a) {
        args[a].resize(spec->arg_span(a, n));
        GatherArg(*spec, a, views, 0, n, args[a].data());
        in.push_back(args[a].data());
      }
      std::vector<uint8_t> want(n * spec->output_bytes(), 0x11);
      std::vector<uint8_t> got(want.size(), 0x22);
      spec->reference(in.data(), want.data(), n);
      spec->cpu(in.data(), got.data(), n);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i], want[i])
            << spec->name << " N=" << n << ": " << spec->unit << " "
            << i / spec->output_bytes() << " byte " << i % spec->output_bytes()
            << " (" << cpu::SimdLevel() << " path)";
      }
    }
  }
}

// -------------------------------------------------------------- mel ----

std::vector<int8_t> MelReference(const std::vector<int16_t>& in) {
  const size_t n = in.size() / kMelFrameSamples;
  std::vector<int8_t> out(n * kMelBands);
  for (size_t i = 0; i < n; ++i) {
    mel_kernel_simple(&in[i * kMelFrameSamples], &out[i * kMelBands]);
  }
  return out;
}

// The host face of one of the mel family's vector kernels against its
// scalar entry, frame by frame.
template <typename Out>
void ExpectVectorFaceEqual(const std::vector<int16_t>& in, size_t bands,
                           void (*entry)(const int16_t*, Out*),
                           void (*face)(const int16_t*, Out*, size_t,
                                        vec::Profile*),
                           const std::string& what, const char* kernel) {
  const size_t n = in.size() / kMelFrameSamples;
  std::vector<Out> expected(n * bands);
  for (size_t i = 0; i < n; ++i) {
    entry(&in[i * kMelFrameSamples], &expected[i * bands]);
  }
  std::vector<Out> got(n * bands, static_cast<Out>(0x55));
  face(in.data(), got.data(), n, nullptr);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i], expected[i])
        << what << ": frame " << i / bands << " band " << i % bands << " ("
        << kernel << " AIE vector kernel, host face)";
  }
}

// `vector`: also the AIE vector kernels' host faces (kernels/mel/
// mel_kernel_vec.cc), other implementations of the same bytes: mel's and
// mel_pcm's; with `vector128` also mel128's and mel128_pcm's.
void ExpectMelPathsEqual(const std::vector<int16_t>& in,
                         const std::string& what, bool vector = true,
                         bool vector128 = true) {
  const size_t n = in.size() / kMelFrameSamples;
  const std::vector<int8_t> expected = MelReference(in);
  std::vector<int8_t> out(n * kMelBands);
  cpu::MelFrames(in.data(), out.data(), n);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i], expected[i])
        << what << ": frame " << i / kMelBands << " band " << i % kMelBands
        << " (" << cpu::MelSimdLevel() << " path)";
  }
  if (cpu::HasAvx512Mel()) {
    // MelFrames took AVX-512: the AVX2 path too.
    std::fill(out.begin(), out.end(), int8_t{0x55});
    cpu::MelFramesAvx2(in.data(), out.data(), n);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], expected[i])
          << what << ": frame " << i / kMelBands << " band " << i % kMelBands
          << " (avx2 path)";
    }
  }
  if (!vector) return;
  ExpectVectorFaceEqual<int8_t>(in, kMelBands, mel_kernel_simple,
                                cpu::MelFramesVec, what, "mel");
  ExpectVectorFaceEqual<int16_t>(in, kMelBands, mel_pcm_kernel_simple,
                                 cpu::MelPcmFramesVec, what, "mel_pcm");
  if (!vector128) return;
  ExpectVectorFaceEqual<int8_t>(in, kMel128Bands, mel128_kernel_simple,
                                cpu::Mel128FramesVec, what, "mel128");
  ExpectVectorFaceEqual<int16_t>(in, kMel128Bands, mel128_pcm_kernel_simple,
                                 cpu::Mel128PcmFramesVec, what, "mel128_pcm");
}

std::vector<int16_t> Frames(size_t n) {
  return std::vector<int16_t>(n * kMelFrameSamples);
}

int16_t Clip(double x) {
  const double s = std::nearbyint(x * 32768.0);
  return static_cast<int16_t>(s > 32767 ? 32767 : (s < -32768 ? -32768 : s));
}

// The dispatched path is the one under test: on an AVX2 machine it must be
// the AVX2 path, or these tests would only compare the reference with itself.
TEST(MelBitExactTest, DispatchTakesTheFastPathWhenAvailable) {
  std::printf("cpu path: %s, mel path: %s\n", cpu::SimdLevel(),
              cpu::MelSimdLevel());
  EXPECT_EQ(std::string(cpu::SimdLevel()),
            cpu::HasAvx2() ? "avx2" : "portable");
  EXPECT_EQ(
      std::string(cpu::MelSimdLevel()),
      cpu::HasAvx512Mel() ? "avx512" : (cpu::HasAvx2() ? "avx2" : "portable"));
}

TEST(MelBitExactTest, EdgeCases) {
  std::vector<int16_t> in;
  auto add = [&](auto sample) {
    for (size_t n = 0; n < kMelFrameSamples; ++n) {
      in.push_back(sample(static_cast<int>(n)));
    }
  };
  add([](int) { return int16_t{0}; });       // silence
  add([](int) { return int16_t{32767}; });   // DC max
  add([](int) { return int16_t{-32768}; });  // DC min
  add([](int) { return int16_t{1}; });       // 1 LSB
  add([](int n) { return static_cast<int16_t>(n % 2 ? -32768 : 32767); });
  for (double hz : {50.0, 1000.0, 3999.0, 7999.0}) {  // squares
    add([hz](int n) {
      return static_cast<int16_t>(
          std::sin(2 * std::numbers::pi * hz * n / 16000.0) >= 0 ? 32767
                                                                 : -32768);
    });
  }
  for (double hz : {440.0, 8000.0}) {  // full sine
    add([hz](int n) {
      return Clip(std::sin(2 * std::numbers::pi * hz * n / 16000.0));
    });
  }
  for (int pos : {0, 1, 199, 200, 201, 399}) {  // impulses
    add([pos](int n) { return static_cast<int16_t>(n == pos ? -32768 : 0); });
    add([pos](int n) { return static_cast<int16_t>(n == pos ? 32767 : 0); });
  }
  // Squares in phase with the cosine and the sine of bin k: the frame's
  // whole L1 norm in one bin, the largest values inside the FFT
  // (kernels/common/mel_fft.h keeps them within int32; the vector face's
  // digit accumulators within their bounds).
  for (int k : {1, 7, 50, 99, 100, 101, 133, 199}) {
    for (int phase : {0, 100}) {
      add([k, phase](int n) {
        return mel::kCos.v[(k * n + phase) % 400] >= 0 ? int16_t{32767}
                                                       : int16_t{-32768};
      });
    }
  }
  // 39 frames: the grouped paths (4, 8 and 16 frames) and their remainders
  // all see edge cases.
  ExpectMelPathsEqual(in, "edge cases");
}

TEST(MelBitExactTest, RandomFrames) {
  const size_t total = RandomItems(100000);
  std::mt19937_64 rng(1);
  constexpr size_t kBatch = 1000;
  for (size_t done = 0; done < total; done += kBatch) {
    std::vector<int16_t> in = Frames(kBatch);
    // Mix full-scale uniform, quiet Gaussian and sparse frames.
    std::normal_distribution<double> gauss(0.0, 1.0);
    for (size_t f = 0; f < kBatch; ++f) {
      const int kind = static_cast<int>(f % 4);
      const double amp = std::pow(10.0, -static_cast<double>(rng() % 5));
      for (size_t n = 0; n < kMelFrameSamples; ++n) {
        int16_t& s = in[f * kMelFrameSamples + n];
        switch (kind) {
          case 0:
            s = static_cast<int16_t>(rng());
            break;
          case 1:
            s = Clip(0.3 * amp * gauss(rng));
            break;
          case 2:
            s = (rng() % 17 == 0) ? static_cast<int16_t>(rng()) : int16_t{0};
            break;
          default:
            s = static_cast<int16_t>(static_cast<int>(rng() % 7) - 3);
            break;
        }
      }
    }
    // The vector kernels' host faces are ~50x slower than the CPU backend:
    // the 80-band ones see the first 8,000 random frames, the 128-band ones
    // the first 4,000 (and all of them every edge case).
    ExpectMelPathsEqual(in, "random batch at " + std::to_string(done),
                        done < 8000, done < 4000);
    if (HasFatalFailure()) return;
  }
}

// ----------------------------------------------------------- attention ----

// Every CPU path this machine can run, forced: each is compared with the
// kernel entry, so the AVX2 path stays tested on machines whose dispatch
// picks AVX-512 (the registry test above runs the dispatch itself, and
// DispatchTakesTheBestPath checks what it picks).
struct AttentionPath {
  std::string name;
  void (*run)(const int8_t*, int8_t*, size_t, const ScoreScale*);
};

std::vector<AttentionPath> AttentionPaths() {
  // The portable path is the kernel entry itself: nothing to compare.
  std::vector<AttentionPath> paths;
  if (cpu::HasAvx512Vnni()) {
    paths.push_back({"avx512vnni", &cpu::AttentionTilesAvx512});
  }
  if (cpu::HasAvx2()) paths.push_back({"avx2", &cpu::AttentionTilesAvx2});
  return paths;
}

// The dispatched path is the best one the CPU has, or the paths below would
// not be the ones the daemon runs.
TEST(AttentionBitExactTest, DispatchTakesTheBestPath) {
  std::printf("attention cpu path: %s\n", cpu::AttentionPath());
  const char* best = cpu::HasAvx512Vnni() ? "avx512vnni"
                     : cpu::HasAvx2()     ? "avx2"
                                          : "portable";
  EXPECT_EQ(std::string(cpu::AttentionPath()), best);
}

// `vector`: also the AIE vector kernel's host face (kernels/attention/
// attention_kernel_vec.cc).
void ExpectAttentionPathsEqual(const std::vector<int8_t>& qkv,
                               const std::vector<ScoreScale>& scales,
                               const std::string& what, bool vector = true) {
  const size_t n = scales.size();
  std::vector<int8_t> expected(n * kAttentionOutBytes);
  for (size_t i = 0; i < n; ++i) {
    attention_64x64(&qkv[i * kAttentionInBytes], &expected[i * 4096],
                    scales[i].multiplier, scales[i].shift);
  }
  for (const AttentionPath& path : AttentionPaths()) {
    std::vector<int8_t> out(expected.size(), 0x55);
    path.run(qkv.data(), out.data(), n, scales.data());
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], expected[i])
          << what << ": tile " << i / 4096 << " row " << (i % 4096) / 64
          << " col " << i % 64 << " scale (" << scales[i / 4096].multiplier
          << ", " << scales[i / 4096].shift << ") (" << path.name << " path)";
    }
  }
  if (!vector) return;
  for (size_t t = 0; t < n; ++t) {
    std::vector<int8_t> tile(kAttentionOutBytes, 0x55);
    attention_64x64_vec(&qkv[t * kAttentionInBytes], tile.data(),
                        scales[t].multiplier, scales[t].shift);
    for (size_t i = 0; i < tile.size(); ++i) {
      ASSERT_EQ(tile[i], expected[t * 4096 + i])
          << what << ": tile " << t << " row " << i / 64 << " col " << i % 64
          << " scale (" << scales[t].multiplier << ", " << scales[t].shift
          << ") (AIE vector kernel, host face)";
    }
  }
}

std::vector<ScoreScale> ScaleSweep() {
  std::vector<ScoreScale> scales;
  for (double s = kMinScoreScale; s <= kMaxScoreScale; s *= 1.9) {
    scales.push_back(QuantizeScoreScale(s));
  }
  scales.push_back(QuantizeScoreScale(kMaxScoreScale));
  scales.push_back(QuantizeScoreScale(0.125));
  scales.push_back(QuantizeScoreScale(0.0125));
  return scales;
}

TEST(AttentionBitExactTest, EdgeCasesAcrossScoreScales) {
  std::vector<std::vector<int8_t>> tiles;
  tiles.emplace_back(kAttentionInBytes, int8_t{-128});
  tiles.emplace_back(kAttentionInBytes, int8_t{127});
  tiles.emplace_back(kAttentionInBytes, int8_t{0});
  std::vector<int8_t> mixed(kAttentionInBytes);
  for (size_t i = 0; i < mixed.size(); ++i) {
    mixed[i] = (i / 64) % 2 ? int8_t{127} : int8_t{-128};
  }
  tiles.push_back(mixed);
  std::vector<int8_t> one_hot(kAttentionInBytes, 0);
  for (size_t r = 0; r < 64; ++r) {
    one_hot[r * 64 + r] = 127;                     // q = 127 I
    one_hot[4096 + r * 64 + (r + 1) % 64] = -128;  // k shifted
    one_hot[8192 + r * 64 + r] = static_cast<int8_t>(r * 4 - 128);
  }
  tiles.push_back(one_hot);
  const std::vector<ScoreScale> sweep = ScaleSweep();
  for (size_t t = 0; t < tiles.size(); ++t) {
    std::vector<int8_t> qkv;
    for (size_t s = 0; s < sweep.size(); ++s) {
      qkv.insert(qkv.end(), tiles[t].begin(), tiles[t].end());
    }
    ExpectAttentionPathsEqual(qkv, sweep, "edge tile " + std::to_string(t));
    if (HasFatalFailure()) return;
  }
}

TEST(AttentionBitExactTest, OutOfContractScalePairsAgree) {
  std::vector<int8_t> qkv(4 * kAttentionInBytes);
  std::mt19937 rng(5);
  for (int8_t& b : qkv) b = static_cast<int8_t>(rng());
  const std::vector<ScoreScale> odd = {
      {0, 0}, {-5, 40}, {INT32_MAX, -100}, {1 << 30, 31}};
  ExpectAttentionPathsEqual(qkv, odd, "out-of-contract scales");
}

// Tiles are windows at random offsets into a pool of random bytes (half
// uniform, half Gaussian of random width): every tile differs, and drawing
// 1.2 GB of fresh random bytes would dominate the test's run time.
TEST(AttentionBitExactTest, RandomTiles) {
  const size_t total = RandomItems(100000);
  std::mt19937_64 rng(2);
  std::normal_distribution<double> gauss(0.0, 1.0);
  constexpr size_t kPool = size_t{1} << 22;
  std::vector<int8_t> pool(kPool + kAttentionInBytes);
  for (size_t i = 0; i < pool.size(); ++i) {
    const double sigma = 10.0 + static_cast<double>((i >> 14) % 40);
    pool[i] = (i >> 16) % 2 == 0
                  ? static_cast<int8_t>(rng())
                  : static_cast<int8_t>(std::clamp(
                        std::nearbyint(sigma * gauss(rng)), -128.0, 127.0));
  }
  std::uniform_real_distribution<double> log_scale(std::log(kMinScoreScale),
                                                   std::log(kMaxScoreScale));
  constexpr size_t kBatch = 200;
  std::vector<int8_t> qkv(kBatch * kAttentionInBytes);
  std::vector<ScoreScale> scales(kBatch);
  for (size_t done = 0; done < total; done += kBatch) {
    for (size_t t = 0; t < kBatch; ++t) {
      std::memcpy(&qkv[t * kAttentionInBytes], &pool[rng() % kPool],
                  kAttentionInBytes);
      scales[t] = QuantizeScoreScale(std::exp(log_scale(rng)));
    }
    // The vector kernel's host face sees the first 4,000 random tiles (and
    // every edge case): it is ~20x slower than the CPU backend.
    ExpectAttentionPathsEqual(
        qkv, scales, "random batch at " + std::to_string(done), done < 4000);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace npuk
