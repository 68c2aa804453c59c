// The mel kernel's arithmetic, one stage per function:
//   window   xw[n] = round(x[n] * w[n] * 2^4), w Q30     (Q4, |xw| < 2^19)
//   DFT      2 X[k] via Fft200 + SplitReal               (Q4, 201 bins)
//   power    P[k] = |2 X[k]|^2                           (Q10 of int16^2)
//   mel      E[m] = sum_k W[m][k] P[k], W Q20            (Q14 of int16^2)
//   log      q = clamp(round(16 (log10(E 2^-44) + 4)), -96, 127)
// where 2^-44 turns Q14 of int16^2 into full-scale-1.0 units (2^14 * 2^30).
// The floor log10 P >= -10 makes q >= -96. Precision is kept where Whisper's
// float pipeline needs it: quiet bands (log10 P down to -9, a power of about
// one int16 LSB^2) are still computed to better than 0.1%.
#ifndef NPUK_KERNELS_COMMON_MEL_MATH_H_
#define NPUK_KERNELS_COMMON_MEL_MATH_H_

#include <cstdint>

#include "kernels/common/fft.h"
#include "kernels/common/fixed_point.h"
#include "kernels/common/mel_tables.h"

namespace npuk::mel {

// Sample n of the windowed frame in Q4: round(x * w[n] / 2^26).
template <typename V>
inline V WindowSample(V x16, int n) {
  using fixed::MulQ30;
  return MulQ30(x16, kWindow.w[n]);  // x16 = x * 16, so x * w * 2^-26
}

// Mel energy in Q14 of int16^2. The Q10 power reaches 2^56.3, the Q30
// product would not fit in 64 bits, so the high and low 32-bit halves of
// the power are accumulated separately and recombined at Q14.
inline uint64_t MelEnergy(const uint64_t* power, int m) {
  const int first = kFilterbank.first[m];
  const int count = kFilterbank.count[m];
  const int32_t* w = kFilterbank.weight + kFilterbank.offset[m];
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

// From 2 X[k] (Q4) to the 80 output bytes.
inline void LogMelFromSpectrum(const Complex<int32_t>* x2, int8_t* out) {
  uint64_t power[kFftBins];
  for (int k = 0; k < kFftBins; ++k) {
    const int64_t re = x2[k].re;
    const int64_t im = x2[k].im;
    power[k] = static_cast<uint64_t>(re * re) + static_cast<uint64_t>(im * im);
  }
  for (int m = 0; m < kMelBands; ++m) {
    out[m] = QuantizeLogMel(MelEnergy(power, m));
  }
}

// The whole frame, scalar: 400 int16 samples to 80 int8 log-mel values.
inline void LogMelFrame(const int16_t* in, int8_t* out) {
  Complex<int32_t> z[kHalfSamples];
  for (int n = 0; n < kHalfSamples; ++n) {
    z[n].re = WindowSample<int32_t>(int32_t{in[2 * n]} * 16, 2 * n);
    z[n].im = WindowSample<int32_t>(int32_t{in[2 * n + 1]} * 16, 2 * n + 1);
  }
  Complex<int32_t> spectrum[kHalfSamples];
  Fft200(z, spectrum);
  Complex<int32_t> x2[kFftBins];
  SplitReal(spectrum, x2);
  LogMelFromSpectrum(x2, out);
}

}  // namespace npuk::mel

#endif  // NPUK_KERNELS_COMMON_MEL_MATH_H_
