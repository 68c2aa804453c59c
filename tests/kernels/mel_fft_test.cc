// The mel kernels' integer FFT (kernels/common/mel_fft.h) against the exact
// DFT of the same windowed samples: its index maps, its rounding noise and
// its range on inputs that drive single bins and the whole sum to full
// scale (an int32 overflow anywhere would show as an error of thousands).
#include "kernels/common/mel_fft.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/common/mel_math.h"
#include "kernels/common/mel_tables.h"

namespace npuk::mel {
namespace {

constexpr int kN = kFrameSamples;

// 2X[k] in Q4 without rounding: the exact sum in Q38 over 2^33.
struct ExactBin {
  double re;
  double im;
};

std::vector<ExactBin> ExactSpectrum(const int32_t* xw) {
  std::vector<ExactBin> out(kFftBins);
  for (int k = 0; k < kFftBins; ++k) {
    int64_t re = 0, im = 0;  // |S| < 2^23 * 200 * 2^30 < 2^61
    for (int n = 0; n < kN; ++n) {
      re += int64_t{xw[n]} * kCos.v[(k * n) % kN];
      // -sin(t) = cos(t + pi/2)
      im += int64_t{xw[n]} * kCos.v[(k * n + kN / 4) % kN];
    }
    out[k] = {std::ldexp(static_cast<double>(re), -kSpectrumShift),
              std::ldexp(static_cast<double>(im), -kSpectrumShift)};
  }
  return out;
}

struct ErrorStats {
  double worst = 0;
  double sum_sq = 0;
  long count = 0;
  double rms() const { return std::sqrt(sum_sq / static_cast<double>(count)); }
};

void Accumulate(const int16_t* x, ErrorStats* stats) {
  int32_t xw[kN];
  for (int n = 0; n < kN; ++n) xw[n] = WindowSample(x[n], n);
  Bin fft[kFftBins];
  Spectrum(xw, fft);
  const std::vector<ExactBin> exact = ExactSpectrum(xw);
  for (int k = 0; k < kFftBins; ++k) {
    const double er = fft[k].re - exact[k].re;
    const double ei = fft[k].im - exact[k].im;
    stats->worst = std::max({stats->worst, std::fabs(er), std::fabs(ei)});
    stats->sum_sq += er * er + ei * ei;
    stats->count += 2;
  }
}

TEST(MelFftTest, IndexMapsArePermutations) {
  std::set<int> slots, bins;
  for (int k = 0; k < fft::kPoints; ++k) slots.insert(fft::kSlots.slot[k]);
  EXPECT_EQ(slots.size(), static_cast<size_t>(fft::kPoints));
  EXPECT_EQ(*slots.begin(), 0);
  EXPECT_EQ(*slots.rbegin(), fft::kPoints - 1);
  for (int k = 0; k < kFftBins; ++k) bins.insert(fft::BinSlot(k));
  EXPECT_EQ(bins.size(), static_cast<size_t>(kFftBins));
  std::set<int> inputs;
  for (int n2 = 0; n2 < 25; ++n2) {
    for (int j = 0; j < 8; ++j) inputs.insert(fft::kTables.input[n2][j]);
  }
  EXPECT_EQ(inputs.size(), static_cast<size_t>(fft::kPoints));
}

TEST(MelFftTest, SilenceIsExactlyZero) {
  const std::vector<int16_t> x(kN, 0);
  int32_t xw[kN];
  for (int n = 0; n < kN; ++n) xw[n] = WindowSample(x[n], n);
  Bin fft[kFftBins];
  Spectrum(xw, fft);
  for (int k = 0; k < kFftBins; ++k) {
    EXPECT_EQ(fft[k].re, 0) << k;
    EXPECT_EQ(fft[k].im, 0) << k;
  }
}

// Gaussian frames from a whisper to full scale: every bin within a few
// hundredths of an int16 LSB of the exact DFT. The final rounding alone is
// uniform in +-0.5 Q4 (0.29 rms); the FFT's ~1,400 internal roundings at
// 2^-8 LSB each add about 0.2 rms.
TEST(MelFftTest, RoundingNoiseAgainstTheExactDft) {
  std::mt19937 rng(20261206);
  ErrorStats stats;
  for (double sigma : {1.0, 30.0, 1000.0, 9000.0}) {
    std::normal_distribution<double> g(0.0, sigma);
    for (int frame = 0; frame < 60; ++frame) {
      int16_t x[kN];
      for (int16_t& v : x) {
        v = static_cast<int16_t>(
            std::clamp(std::nearbyint(g(rng)), -32768.0, 32767.0));
      }
      Accumulate(x, &stats);
    }
  }
  std::printf("FFT - exact DFT, Q4 units of 2X: max %.3f, rms %.3f\n",
              stats.worst, stats.rms());
  EXPECT_LT(stats.worst, 3.0);
  EXPECT_LT(stats.rms(), 0.45);
}

// Full-scale inputs: a square wave in phase with bin k puts the whole L1
// norm of the frame into that bin (|2X| near 2^30.6 in Q8 inside the FFT),
// an alternating +-full scale does it for bin 200, constant full scale for
// bin 0; random signs spread it. Any int32 wrap would be off by ~2^28.
TEST(MelFftTest, FullScaleInputsStayInRange) {
  ErrorStats stats;
  std::vector<std::vector<int16_t>> frames;
  for (int k : {0, 1, 7, 50, 99, 100, 101, 133, 199, 200}) {
    for (int phase : {0, 100}) {
      std::vector<int16_t> x(kN);
      for (int n = 0; n < kN; ++n) {
        x[n] = kCos.v[(k * n + phase) % kN] >= 0 ? int16_t{32767}
                                                 : int16_t{-32768};
      }
      frames.push_back(x);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::vector<int16_t> x(kN);
    for (int16_t& v : x) v = (rng() & 1) != 0 ? 32767 : -32768;
    frames.push_back(x);
  }
  for (const auto& x : frames) Accumulate(x.data(), &stats);
  std::printf("full scale: max %.3f, rms %.3f\n", stats.worst, stats.rms());
  EXPECT_LT(stats.worst, 3.0);
  EXPECT_LT(stats.rms(), 0.45);
}

}  // namespace
}  // namespace npuk::mel
