// The mel kernels' arithmetic (mel and mel128 differ only in the filterbank
// of the mel stage: 80 or 128 bands), one stage per function:
//   window   xw[n] = round(x[n] w[n] / 2^22), w Q30       (Q8, |xw| < 2^23)
//   DFT      S[k] = sum_n xw[n] e^{-2 pi i k n / 400}, Q30 cos/sin, exact
//            in int64 (|S| < 2^61); 2X[k] = round(S[k] / 2^33)  (Q4 of 2X)
//   power    P[k] = |2X[k]|^2                                (Q10 of int16^2)
//   mel      E[m] = sum_k W[m][k] P[k], W Q20                (Q14 of int16^2)
//   log      q = clamp(round(16 (log10(E 2^-44) + 4)), -96, 127)
// where 2^-44 turns Q14 of int16^2 into full-scale-1.0 units (2^14 * 2^30).
// The floor log10 P >= -10 makes q >= -96. The windowed kernels (mel_pcm,
// mel128_pcm) end in a finer log stage instead (LogMelQ8, below):
//   log      l = max(round(256 log10(E 2^-44)), -2560)      (int16, Q8)
//
// Why a direct DFT and not an FFT: Whisper's float pipeline resolves bands
// down to log10 P = -9, about one int16 LSB^2 of power, next to bands
// 10^12 louder in the same frame. A 32-bit fixed-point FFT rounds at every
// stage and its noise (~0.5 LSB rms) swamps those bands; the direct sum is
// exact integer arithmetic with one rounding at the end. Exactness also lets
// the CPU backend reorder and fold the sum freely and still match bit for
// bit.
#ifndef NPUK_KERNELS_COMMON_MEL_MATH_H_
#define NPUK_KERNELS_COMMON_MEL_MATH_H_

#include <cstdint>

#include "kernels/common/fixed_point.h"
#include "kernels/common/mel_tables.h"

namespace npuk::mel {

struct Bin {
  int32_t re;
  int32_t im;
};

inline constexpr int kWindowShift = 22;    // Q30 window product to Q8
inline constexpr int kSpectrumShift = 33;  // Q38 sum to 2X in Q4

// Sample n of the windowed frame, Q8.
constexpr int32_t WindowSample(int16_t x, int n) {
  return static_cast<int32_t>(
      fixed::RoundShift(static_cast<int64_t>(x) * kWindow.w[n], kWindowShift));
}

// 2X[k] in Q4 from the exact sums S[k] (Q38).
constexpr Bin SpectrumBin(int64_t sum_re, int64_t sum_im) {
  return Bin{static_cast<int32_t>(fixed::RoundShift(sum_re, kSpectrumShift)),
             static_cast<int32_t>(fixed::RoundShift(sum_im, kSpectrumShift))};
}

// The exact DFT of the windowed frame, 201 bins of 2X in Q4:
//   S[k] = sum_n xw[n] cos(2 pi k n/400) - i sum_n xw[n] sin(2 pi k n/400).
// The sum is exact, so folding it by the symmetries of the cosine table
// changes no result and quarters the work (~40k multiply-adds):
//   n <-> 400 - n: cos even, sin odd   -> a = xw[n] + xw[400-n], b = ... -
//   n <-> 200 - n: cos(200k - j) = (-1)^k cos(j), -sin(200k - j) =
//                  -(-1)^k (-sin(j))    -> even k: a+, b-; odd k: a-, b+
// with n = 0, 100, 200 taken separately. -sin(t) = cos(t + pi/2), so one
// table serves both parts.
inline void Spectrum(const int32_t* xw, Bin* x2) {
  constexpr int kHalf = kFrameSamples / 2;     // 200
  constexpr int kQuarter = kFrameSamples / 4;  // 100
  int32_t a[kHalf];  // xw[n] + xw[400 - n], |a| < 2^24
  int32_t b[kHalf];  // xw[n] - xw[400 - n]
  for (int n = 1; n < kHalf; ++n) {
    a[n] = xw[n] + xw[kFrameSamples - n];
    b[n] = xw[n] - xw[kFrameSamples - n];
  }
  // [0]: even k, [1]: odd k; n = 1..99, |value| < 2^25.
  int32_t re_terms[2][kQuarter];
  int32_t im_terms[2][kQuarter];
  for (int n = 1; n < kQuarter; ++n) {
    re_terms[0][n] = a[n] + a[kHalf - n];
    re_terms[1][n] = a[n] - a[kHalf - n];
    im_terms[0][n] = b[n] - b[kHalf - n];
    im_terms[1][n] = b[n] + b[kHalf - n];
  }
  for (int k = 0; k < kFftBins; ++k) {
    const int odd = k & 1;
    // n = 0 and 200: cos is 1 and (-1)^k, sin is 0. n = 100: cos(100k).
    int64_t re = (static_cast<int64_t>(xw[0]) +
                  (odd ? -int64_t{xw[kHalf]} : int64_t{xw[kHalf]})) *
                     kCos.v[0] +
                 static_cast<int64_t>(a[kQuarter]) *
                     kCos.v[(kQuarter * k) % kFrameSamples];
    int64_t im = static_cast<int64_t>(b[kQuarter]) *
                 kCos.v[(kQuarter * k + kQuarter) % kFrameSamples];
    const int32_t* rt = re_terms[odd];
    const int32_t* it = im_terms[odd];
    int j = k;              // k n mod 400
    int js = k + kQuarter;  // k n + 100 mod 400
    if (js >= kFrameSamples) js -= kFrameSamples;
    for (int n = 1; n < kQuarter; ++n) {
      re += static_cast<int64_t>(rt[n]) * kCos.v[j];
      im += static_cast<int64_t>(it[n]) * kCos.v[js];
      j += k;
      if (j >= kFrameSamples) j -= kFrameSamples;
      js += k;
      if (js >= kFrameSamples) js -= kFrameSamples;
    }
    x2[k] = SpectrumBin(re, im);
  }
}

// Mel energy of band m of the Bands-band filterbank in Q14 of int16^2. The
// Q10 power reaches 2^56.3, the Q30 product would not fit in 64 bits, so
// the high and low 32-bit halves of the power are accumulated separately
// and recombined at Q14.
template <int Bands = kMelBands>
inline uint64_t MelEnergy(const uint64_t* power, int m) {
  const FilterbankTableOf<Bands>& fb = kFilterbankOf<Bands>;
  const int first = fb.first[m];
  const int count = fb.count[m];
  const int32_t* w = fb.weight + fb.offset[m];
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < count; ++i) {
    const uint64_t p = power[first + i];
    const uint64_t weight = static_cast<uint32_t>(w[i]);
    hi += (p >> 32) * weight;
    lo += (p & 0xFFFFFFFFu) * weight;
  }
  return (hi << 16) + (lo >> 16);
}

// log2(e) in Q30 for e >= 1: normalise, then interpolate log2(1 + f)
// linearly in a 129-entry table (error < 1.2e-5).
inline int64_t Log2Q30(uint64_t e) {
  const int msb = fixed::MsbIndex(e);
  const uint64_t mantissa = msb >= 30 ? e >> (msb - 30) : e << (30 - msb);
  const uint32_t f = static_cast<uint32_t>(mantissa) - (uint32_t{1} << 30);
  constexpr int kFracBits = 30 - kLog2TableBits;
  const uint32_t index = f >> kFracBits;
  const int64_t frac = f & ((uint32_t{1} << kFracBits) - 1);
  const int64_t lo = kLog2.v[index];
  const int64_t hi = kLog2.v[index + 1];
  return (static_cast<int64_t>(msb) << 30) + lo +
         (((hi - lo) * frac) >> kFracBits);
}

// 16 log10(2) in Q28.
inline constexpr int64_t kSixteenLog10Of2Q28 =
    cmath::Round(16.0 * 0.30102999566398119521373889472449302 * (1 << 28));
inline constexpr int kEnergyFracBits = 44;  // Q14 and int16 full scale 2^30
inline constexpr int kMinLogMel = -96;      // 16 * (log10(1e-10) + 4)

inline int8_t QuantizeLogMel(uint64_t energy) {
  if (energy == 0) return static_cast<int8_t>(kMinLogMel);
  // 16 log10(E 2^-44) + 64 = 16 log10(2) (log2 E - 44) + 64, in Q52.
  const int64_t log2_q24 =
      (Log2Q30(energy) >> 6) - (int64_t{kEnergyFracBits} << 24);
  const int64_t value_q52 =
      log2_q24 * kSixteenLog10Of2Q28 + (int64_t{64} << 52);
  int64_t q = fixed::RoundShift(value_q52, 52);
  if (q < kMinLogMel) q = kMinLogMel;
  if (q > 127) q = 127;
  return static_cast<int8_t>(q);
}

// P[k] = re² + im² of 2X[k] (Q4): the power stage both log stages share.
inline void PowerSpectrum(const Bin* x2, uint64_t* power) {
  for (int k = 0; k < kFftBins; ++k) {
    const int64_t re = x2[k].re;
    const int64_t im = x2[k].im;
    power[k] = static_cast<uint64_t>(re * re) + static_cast<uint64_t>(im * im);
  }
}

// From 2X[k] (Q4) to the Bands output bytes (80 for mel, 128 for mel128).
// Everything before this stage is independent of the band count.
template <int Bands = kMelBands>
inline void LogMelFromSpectrum(const Bin* x2, int8_t* out) {
  uint64_t power[kFftBins];
  PowerSpectrum(x2, power);
  for (int m = 0; m < Bands; ++m) {
    out[m] = QuantizeLogMel(MelEnergy<Bands>(power, m));
  }
}

// The fine log stage of the windowed kernels (mel_pcm, mel128_pcm), from
// the same integer mel energies as QuantizeLogMel:
//   l = max(round(256 log10(E 2^-44)), -2560)   int16, Q8 of log10 P
// i.e. log10 of max(P, 1e-10) in steps of 1/256, Whisper's own floor. The
// int8 code's 1/16 step is too coarse where the features vary little
// (low-level noise at 128 bands); this one is 16 times finer and still
// exact integer arithmetic. E < 2^64 bounds l below 256 log10(2^20) = 1542,
// so int16 never saturates. The framed kernels keep their int8 wire format.
inline constexpr int kLogMelQ8Bits = 8;
inline constexpr int16_t kMinLogMelQ8 = -10 << kLogMelQ8Bits;  // log10 1e-10
// log10(2) in Q28.
inline constexpr int64_t kLog10Of2Q28 =
    cmath::Round(0.30102999566398119521373889472449302 * (1 << 28));

inline int16_t LogMelQ8(uint64_t energy) {
  if (energy == 0) return kMinLogMelQ8;
  // log2(E 2^-44) in Q24, |.| <= 44 2^24; times log10(2) in Q28 is Q52,
  // |.| < 2^56.
  const int64_t log2_q24 =
      (Log2Q30(energy) >> 6) - (int64_t{kEnergyFracBits} << 24);
  const int64_t l =
      fixed::RoundShift(log2_q24 * kLog10Of2Q28, 52 - kLogMelQ8Bits);
  return static_cast<int16_t>(l < kMinLogMelQ8 ? kMinLogMelQ8 : l);
}

// From 2X[k] (Q4) to Bands Q8 log-mel values: the same power and
// filterbank as LogMelFromSpectrum, then LogMelQ8.
template <int Bands = kMelBands>
inline void LogMelQ8FromSpectrum(const Bin* x2, int16_t* out) {
  uint64_t power[kFftBins];
  PowerSpectrum(x2, power);
  for (int m = 0; m < Bands; ++m) {
    out[m] = LogMelQ8(MelEnergy<Bands>(power, m));
  }
}

// The whole window for mel_pcm / mel128_pcm: 400 int16 samples to Bands
// int16 Q8 log-mel values (LogMelFrame's stages, the fine log stage).
template <int Bands = kMelBands>
inline void LogMelQ8Frame(const int16_t* in, int16_t* out) {
  int32_t xw[kFrameSamples];
  for (int n = 0; n < kFrameSamples; ++n) xw[n] = WindowSample(in[n], n);
  Bin x2[kFftBins];
  Spectrum(xw, x2);
  LogMelQ8FromSpectrum<Bands>(x2, out);
}

// The whole frame: 400 int16 samples to Bands int8 log-mel values.
template <int Bands = kMelBands>
inline void LogMelFrame(const int16_t* in, int8_t* out) {
  int32_t xw[kFrameSamples];
  for (int n = 0; n < kFrameSamples; ++n) xw[n] = WindowSample(in[n], n);
  Bin x2[kFftBins];
  Spectrum(xw, x2);
  LogMelFromSpectrum<Bands>(x2, out);
}

}  // namespace npuk::mel

#endif  // NPUK_KERNELS_COMMON_MEL_MATH_H_
