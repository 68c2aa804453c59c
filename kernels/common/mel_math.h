// The mel kernels' arithmetic (mel and mel128 differ only in the filterbank
// of the mel stage: 80 or 128 bands), one stage per function:
//   window   xw[n] = round(x[n] w[n] / 2^22), w Q30       (Q8, |xw| < 2^23)
//   DFT      X[k] = sum_n xw[n] e^{-2 pi i k n / 400} by the integer FFT
//            of mel_fft.h: Q8 int32 values, products by Q30 constants
//            summed exactly, each sum rounded once; 2X[k] in Q4
//   power    P[k] = |2X[k]|^2                                (Q10 of int16^2)
//   mel      E[m] = sum_k W[m][k] P[k], W Q20                (Q14 of int16^2)
//   log      q = clamp(round(16 (log10(E 2^-44) + 4)), -96, 127)
// where 2^-44 turns Q14 of int16^2 into full-scale-1.0 units (2^14 * 2^30).
// The floor log10 P >= -10 makes q >= -96. The windowed kernels (mel_pcm,
// mel128_pcm) end in a finer log stage instead (LogMelQ8, below):
//   log      l = max(round(256 log10(E 2^-44)), -2560)      (int16, Q8)
//
// The FFT (mel_fft.h) keeps every value at the window's Q8, 2^-8 of an
// int16 LSB: its ~1,400 roundings add about 0.013 LSB rms to 2X, so the
// bands Whisper resolves down to log10 P = -9 (one LSB^2 of power) next to
// bands 10^12 louder stay within the accuracy bounds. Every backend runs
// the same template, so the roundings, and the bytes, are the same.
#ifndef NPUK_KERNELS_COMMON_MEL_MATH_H_
#define NPUK_KERNELS_COMMON_MEL_MATH_H_

#include <cstdint>

#include "kernels/common/fixed_point.h"
#include "kernels/common/mel_fft.h"
#include "kernels/common/mel_tables.h"

namespace npuk::mel {

struct Bin {
  int32_t re;
  int32_t im;
};

inline constexpr int kWindowShift = 22;  // Q30 window product to Q8
// An exact DFT sum of xw times Q30 constants (Q38) to 2X in Q4: the scale
// tests compare the FFT against.
inline constexpr int kSpectrumShift = 33;

// Sample n of the windowed frame, Q8.
constexpr int32_t WindowSample(int16_t x, int n) {
  return static_cast<int32_t>(
      fixed::RoundShift(static_cast<int64_t>(x) * kWindow.w[n], kWindowShift));
}

// The scalar face of the integer FFT (mel_fft.h): int32 values, exact
// int64 sums of products.
class ScalarFftOps {
 public:
  using V = int32_t;
  using A = int64_t;

  ScalarFftOps(const int32_t* xw, Bin* x2) : xw_(xw), x2_(x2) {}

  V Sample(int n) const { return xw_[n]; }
  static V Prep(V v) { return v; }
  static A Mul(V v, int32_t c) { return int64_t{v} * c; }
  static A Mac(A a, V v, int32_t c) { return a + int64_t{v} * c; }
  static A Lift(V v) { return int64_t{v} * kOneQ30; }
  static A AddA(A a, A b) { return a + b; }
  static A SubA(A a, A b) { return a - b; }
  static V Round(A a, int s) {
    return static_cast<int32_t>(fixed::RoundShift(a, s));
  }
  static V Add(V a, V b) { return a + b; }
  static V Sub(V a, V b) { return a - b; }
  void Put(int i, V v) { scratch_[i] = v; }
  V Get(int i) const { return scratch_[i]; }
  void Emit(int k, V re, V im) { x2_[k] = Bin{re, im}; }
  static void Loop() {}

 private:
  const int32_t* xw_;
  Bin* x2_;
  int32_t scratch_[kFrameSamples];
};

// 2X[k] in Q4, k = 0..200, of the windowed frame xw (Q8): the integer FFT
// of mel_fft.h.
inline void Spectrum(const int32_t* xw, Bin* x2) {
  ScalarFftOps ops(xw, x2);
  fft::Run(ops);
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
