// mel_pcm and mel128_pcm: on both host paths (reference and CPU, and the
// AVX2 batch path itself when the CPU has it), whatever the offset of the
// first window, each window gives mel::LogMelQ8Frame's values for the same
// 400 samples; those are the framed kernels' int8 codes refined (the same
// mel energies, 16 times finer in log10); and the declarations carry the
// halo and the int16 output the server and the NPU design rely on.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/common/cpu_features.h"
#include "kernels/common/mel_math.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

std::vector<int16_t> Pcm(size_t samples, uint32_t seed, double scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 3000);
  std::vector<int16_t> x(samples);
  for (size_t i = 0; i < samples; ++i) {
    x[i] = static_cast<int16_t>(std::clamp(
        scale * (g(rng) + 8000 * std::sin(i * 0.07)), -32768.0, 32767.0));
  }
  return x;
}

template <int Bands>
void WindowsGiveTheEntrysValues(const char* windowed, const char* framed) {
  const KernelSpec* w = FindKernel(windowed);
  const KernelSpec* f = FindKernel(framed);
  ASSERT_NE(w, nullptr);
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(w->internal);
  EXPECT_EQ(w->inputs[0].halo, 240u);
  EXPECT_EQ(w->arg_bytes(0), 320u);
  EXPECT_EQ(w->arg_span(0, 10), 10u * 320 + 480);
  EXPECT_EQ(w->pad_items(), 2u);
  EXPECT_EQ(w->output.dtype, DType::kInt16);
  EXPECT_EQ(w->output_bytes(), 2u * Bands);
  EXPECT_EQ(f->output_bytes(), size_t{Bands});
  // Loud, quiet (a few LSB: bands near the floor), silent.
  for (double scale : {1.0, 0.001, 0.0}) {
    for (size_t n : {1u, 3u, 16u, 37u}) {
      const std::vector<int16_t> pcm = Pcm(n * 160 + 240, 7 + n, scale);
      std::vector<int16_t> frames(n * 400);
      for (size_t i = 0; i < n; ++i) {
        std::memcpy(&frames[i * 400], &pcm[i * 160], 800);
      }
      std::vector<int16_t> want(n * Bands), ref(want.size()), cpu(want.size());
      for (size_t i = 0; i < n; ++i) {
        mel::LogMelQ8Frame<Bands>(&frames[i * 400], &want[i * Bands]);
      }
      const uint8_t* win[] = {reinterpret_cast<const uint8_t*>(pcm.data())};
      w->reference(win, reinterpret_cast<uint8_t*>(ref.data()), n);
      w->cpu(win, reinterpret_cast<uint8_t*>(cpu.data()), n);
      EXPECT_EQ(ref, want) << windowed << " n=" << n << " scale " << scale;
      EXPECT_EQ(cpu, want) << windowed << " n=" << n << " scale " << scale;
      if (cpu::HasAvx2()) {
        std::vector<int16_t> avx2(want.size());
        cpu::LogMelQ8FramesAvx2<Bands>(frames.data(), avx2.data(), n);
        EXPECT_EQ(avx2, want) << windowed << " n=" << n;
      }
      if (cpu::HasAvx512Mel()) {
        std::vector<int16_t> avx512(want.size());
        cpu::LogMelQ8FramesAvx512<Bands>(frames.data(), avx512.data(), n);
        EXPECT_EQ(avx512, want) << windowed << " n=" << n;
      }
      // The framed kernel's code q = round(16 (log10 P + 4)) of the same
      // energy is within half a code of l / 16 + 64 (l's own rounding adds
      // 1/32 of a code), except where q is clamped.
      std::vector<int8_t> q(n * Bands);
      const uint8_t* fin[] = {reinterpret_cast<const uint8_t*>(frames.data())};
      f->reference(fin, reinterpret_cast<uint8_t*>(q.data()), n);
      for (size_t i = 0; i < q.size(); ++i) {
        if (q[i] == mel::kMinLogMel) {
          EXPECT_LE(want[i], (-6 << 8) + 8) << i;
        } else {
          EXPECT_LE(std::fabs(q[i] - (want[i] / 16.0 + 64)), 0.5 + 1 / 32.0)
              << windowed << " value " << i << ": q " << int{q[i]} << " l "
              << want[i];
        }
      }
      if (scale == 0.0) {
        for (int16_t v : want) EXPECT_EQ(v, mel::kMinLogMelQ8);
      }
    }
  }
}

TEST(MelPcm, WindowsGiveTheEntrysValues80) {
  WindowsGiveTheEntrysValues<80>("mel_pcm", "mel");
}

TEST(MelPcm, WindowsGiveTheEntrysValues128) {
  WindowsGiveTheEntrysValues<128>("mel128_pcm", "mel128");
}

// The fine log stage against log10 in double precision: within half a
// step plus the log2 table's interpolation error (< 1.2e-5 in log2), and
// floored at log10 P = -10 as Whisper's max(P, 1e-10).
TEST(MelPcm, FineLogStageIsRoundedLog10) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200000; ++i) {
    const int shift = static_cast<int>(rng() % 64);
    const uint64_t e = (rng() >> shift) | 1;
    const double want = 256 * std::max(std::log10(static_cast<double>(e)) -
                                           44 * std::log10(2.0),
                                       -10.0);
    EXPECT_LE(std::fabs(mel::LogMelQ8(e) - want), 0.5 + 256 * 1.2e-5 * 0.302)
        << e;
  }
  EXPECT_EQ(mel::LogMelQ8(0), -2560);
  EXPECT_EQ(mel::LogMelQ8(1), -2560);
  EXPECT_EQ(mel::LogMelQ8(uint64_t{1} << 44), 0);  // P = 1
  EXPECT_EQ(mel::LogMelQ8(~uint64_t{0}), 1541);    // 256 log10(2^20)
}

}  // namespace
}  // namespace npuk
