// mel128: the kernel entry, the portable and AVX2 CPU paths agree byte for
// byte; the golden files reproduce; the 128-band table is librosa's Slaney
// filterbank; and templating the mel math over the band count left the
// 80-band kernel's bytes unchanged.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/mel_tables.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/mel128/mel128_cpu.h"
#include "kernels/mel128/mel128_kernel.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk {
namespace kernels::mel {
const KernelSpec& Spec();
}
namespace kernels::mel128 {
const KernelSpec& Spec();
}

namespace {

constexpr size_t kSamples = kMelFrameSamples;  // 400
constexpr size_t kBands = kMel128Bands;        // 128

std::vector<int8_t> EntryFrames(const std::vector<int16_t>& in) {
  const size_t n = in.size() / kSamples;
  std::vector<int8_t> out(n * kBands);
  for (size_t i = 0; i < n; ++i) {
    mel128_kernel_simple(&in[i * kSamples], &out[i * kBands]);
  }
  return out;
}

// Every CPU path equals the entry, frame by frame; `what` names the input.
void ExpectPathsMatchEntry(const std::vector<int16_t>& in, const char* what) {
  const size_t n = in.size() / kSamples;
  const std::vector<int8_t> want = EntryFrames(in);
  std::vector<int8_t> got(n * kBands);
  auto expect_same = [&](const char* path) {
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i], want[i]) << what << ", " << path << ": frame "
                                 << i / kBands << " band " << i % kBands;
    }
  };
  cpu::Mel128FramesPortable(in.data(), got.data(), n);
  expect_same("portable");
  std::fill(got.begin(), got.end(), int8_t{0});
  cpu::Mel128Frames(in.data(), got.data(), n);
  expect_same(cpu::SimdLevel());
  if (cpu::HasAvx2()) {
    std::fill(got.begin(), got.end(), int8_t{0});
    cpu::Mel128FramesAvx2(in.data(), got.data(), n);
    expect_same("avx2");
  }
  if (cpu::HasAvx512Mel()) {
    std::fill(got.begin(), got.end(), int8_t{0});
    cpu::LogMelFramesAvx512<kMel128Bands>(in.data(), got.data(), n);
    expect_same("avx512");
  }
}

int16_t Clamp16(double s) {
  s = std::nearbyint(s);
  return static_cast<int16_t>(s > 32767 ? 32767 : (s < -32768 ? -32768 : s));
}

// 10007 frames (not a multiple of the AVX2 group of 4, so the tail path
// runs too): uniform full scale, Gaussian noise from -100 dBFS to clipping,
// sparse impulses and tones with noise.
std::vector<int16_t> RandomFrames(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> uniform(-32768, 32767);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<int16_t> in(n * kSamples);
  for (size_t f = 0; f < n; ++f) {
    int16_t* x = &in[f * kSamples];
    const double level = 32768.0 * std::pow(10.0, -5.0 * unit(rng));
    const double hz = 20.0 + 7980.0 * unit(rng);
    for (size_t i = 0; i < kSamples; ++i) {
      switch (f % 4) {
        case 0:
          x[i] = static_cast<int16_t>(uniform(rng));
          break;
        case 1:
          x[i] = Clamp16(level * 2.0 * gauss(rng));
          break;
        case 2:
          x[i] = unit(rng) < 0.01 ? static_cast<int16_t>(uniform(rng)) : 0;
          break;
        default:
          x[i] = Clamp16(level * std::sin(2 * M_PI * hz * i / 16000.0) +
                         gauss(rng));
          break;
      }
    }
  }
  return in;
}

TEST(Mel128Test, CpuPathsMatchEntryOnRandomFrames) {
  ExpectPathsMatchEntry(RandomFrames(10007, 20261201), "random frames");
}

// Silence, full-scale squares at several periods, Nyquist, DC at both
// rails, a clipped sine, a lone full-scale impulse and one LSB of noise.
std::vector<int16_t> EdgeFrames() {
  std::vector<int16_t> in;
  auto add = [&](auto sample) {
    for (size_t i = 0; i < kSamples; ++i) in.push_back(sample(i));
  };
  add([](size_t) { return int16_t{0}; });
  for (size_t period : {2, 3, 16, 40, 160, 401}) {
    add([period](size_t i) {
      return (i % period) < period / 2 ? int16_t{32767} : int16_t{-32768};
    });
  }
  add([](size_t) { return int16_t{-32768}; });
  add([](size_t) { return int16_t{32767}; });
  add([](size_t i) {  // a sine 4x over full scale, clipped
    return Clamp16(4 * 32768.0 * std::sin(2 * M_PI * 440.0 * i / 16000.0));
  });
  add([](size_t i) { return i == 200 ? int16_t{-32768} : int16_t{0}; });
  add([](size_t i) { return static_cast<int16_t>(i % 3 == 0 ? 1 : 0); });
  return in;
}

TEST(Mel128Test, EdgeCases) {
  const std::vector<int16_t> in = EdgeFrames();
  ExpectPathsMatchEntry(in, "edge cases");
  const std::vector<int8_t> out = EntryFrames(in);
  // Silence is the 1e-10 floor in every band.
  for (size_t m = 0; m < kBands; ++m) EXPECT_EQ(out[m], -96) << m;
  // A full-scale square of period 40 (400 Hz) is loud, not clamped.
  const int8_t* square = &out[4 * kBands];
  int8_t loudest = -128;
  for (size_t m = 0; m < kBands; ++m) loudest = std::max(loudest, square[m]);
  EXPECT_GT(loudest, 32);
  EXPECT_LE(loudest, 127);
}

TEST(Mel128Test, GoldenReproduces) {
  const KernelSpec& spec = kernels::mel128::Spec();
  ASSERT_TRUE(ValidateKernelSpec(spec).ok());
  EXPECT_EQ(spec.name, "mel128");
  EXPECT_EQ(spec.output_bytes(), kBands);
  EXPECT_EQ(spec.arg_bytes(0), kMelFrameInBytes);
  const Golden& g = spec.golden;
  ASSERT_EQ(g.items, 8u);
  ASSERT_EQ(g.inputs.size(), 1u);
  ASSERT_EQ(g.inputs[0].bytes.size(), g.items * kMelFrameInBytes);
  ASSERT_EQ(g.output.bytes.size(), g.items * kBands);
  // The same eight frames as the mel kernel's golden.
  const Golden& mel = kernels::mel::Spec().golden;
  ASSERT_EQ(mel.inputs[0].bytes.size(), g.inputs[0].bytes.size());
  EXPECT_EQ(std::memcmp(mel.inputs[0].bytes.data(), g.inputs[0].bytes.data(),
                        g.inputs[0].bytes.size()),
            0);

  const uint8_t* in[] = {g.inputs[0].bytes.data()};
  std::vector<uint8_t> out(g.output.bytes.size());
  for (const BatchFn fn : {spec.reference, spec.cpu}) {
    std::fill(out.begin(), out.end(), uint8_t{0});
    fn(in, out.data(), g.items);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_EQ(out[i], g.output.bytes[i])
          << (fn == spec.reference ? "reference" : "cpu") << ": frame "
          << i / kBands << " band " << i % kBands;
    }
  }
}

// librosa.filters.mel(sr=16000, n_fft=400, n_mels=128), htk=False,
// norm="slaney", written here with libm instead of const_math.h.
TEST(Mel128Test, FilterbankIsSlaney128) {
  const auto& fb = mel::kFilterbankOf<128>;
  auto hz_to_mel = [](double hz) {
    return hz < 1000 ? hz * 3 / 200
                     : 15 + std::log(hz / 1000) * 27 / std::log(6.4);
  };
  auto mel_to_hz = [](double m) {
    return m < 15 ? m * 200 / 3
                  : 1000 * std::exp(std::log(6.4) / 27 * (m - 15));
  };
  double edges[130];
  for (int i = 0; i < 130; ++i) edges[i] = mel_to_hz(hz_to_mel(8000) * i / 129);
  EXPECT_LE(fb.total, mel::kMaxFilterWeights);
  std::vector<int> filters_of_bin(mel::kFftBins, 0);
  for (int m = 0; m < 128; ++m) {
    ASSERT_GT(fb.count[m], 0) << m;
    for (int k = 0; k < mel::kFftBins; ++k) {
      const double hz = 40.0 * k;
      const double w =
          std::max(0.0, std::min((hz - edges[m]) / (edges[m + 1] - edges[m]),
                                 (edges[m + 2] - hz) /
                                     (edges[m + 2] - edges[m + 1]))) *
          2 / (edges[m + 2] - edges[m]);
      const bool inside = k >= fb.first[m] && k < fb.first[m] + fb.count[m];
      const int32_t q = inside ? fb.weight[fb.offset[m] + k - fb.first[m]] : 0;
      ASSERT_GE(q, 0);
      ASSERT_LT(q, 1 << 16) << "band " << m;  // the documented 16 bits
      ASSERT_NEAR(q, w * (1 << 20), 0.5 + 1e-6) << "band " << m << " bin " << k;
      if (q != 0) ++filters_of_bin[k];
    }
  }
  for (int k = 0; k < mel::kFftBins; ++k) ASSERT_LE(filters_of_bin[k], 2) << k;
}

// The 80-band kernel after templating: its golden output, through the entry
// and both CPU paths, and the CPU paths against the entry on random frames.
TEST(Mel128Test, Mel80Unchanged) {
  const Golden& g = kernels::mel::Spec().golden;
  const size_t n = g.items;
  std::vector<int16_t> in(n * kSamples);
  std::memcpy(in.data(), g.inputs[0].bytes.data(), in.size() * 2);
  std::vector<int8_t> out(n * kMelBands);
  for (size_t i = 0; i < n; ++i) {
    mel_kernel_simple(&in[i * kSamples], &out[i * kMelBands]);
  }
  ASSERT_EQ(out.size(), g.output.bytes.size());
  EXPECT_EQ(std::memcmp(out.data(), g.output.bytes.data(), out.size()), 0);
  std::vector<int8_t> got(out.size());
  cpu::MelFramesPortable(in.data(), got.data(), n);
  EXPECT_EQ(got, out);
  if (cpu::HasAvx2()) {
    std::fill(got.begin(), got.end(), int8_t{0});
    cpu::MelFramesAvx2(in.data(), got.data(), n);
    EXPECT_EQ(got, out);
  }
  if (cpu::HasAvx512Mel()) {
    std::fill(got.begin(), got.end(), int8_t{0});
    cpu::LogMelFramesAvx512<kMelBands>(in.data(), got.data(), n);
    EXPECT_EQ(got, out);
  }

  const std::vector<int16_t> random = RandomFrames(2003, 80);
  const size_t rn = random.size() / kSamples;
  std::vector<int8_t> want(rn * kMelBands), cpu_out(rn * kMelBands);
  for (size_t i = 0; i < rn; ++i) {
    mel_kernel_simple(&random[i * kSamples], &want[i * kMelBands]);
  }
  cpu::MelFrames(random.data(), cpu_out.data(), rn);
  EXPECT_EQ(cpu_out, want);
}

}  // namespace
}  // namespace npuk
