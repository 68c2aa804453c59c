// The attention score scale as the kernel receives it: a 32-bit fixed-point
// multiplier and a power-of-two shift (the gemmlowp/TFLite requantisation
// idiom). Every backend and client turns a double into this pair with
// QuantizeScoreScale(), so a given score_scale means the same bytes
// everywhere.
//
// Header-only, freestanding C++20: it is compiled by the host compiler and by
// Peano for the AIE2 cores, so it uses no libm, no platform intrinsics and only
// freestanding headers.
#ifndef NPUK_KERNELS_COMMON_SCORE_SCALE_H_
#define NPUK_KERNELS_COMMON_SCORE_SCALE_H_

#include <cstdint>

namespace npuk {

// real_scale == multiplier * 2^(shift - 31), multiplier in [2^30, 2^31).
struct ScoreScale {
  int32_t multiplier;
  int32_t shift;
};

// The range the kernel accepts. 2^-16 keeps the exp argument resolution of
// the attention kernel meaningful; 4 keeps (q.k) * scale far from overflow.
inline constexpr double kMinScoreScale = 1.0 / 65536.0;  // 2^-16
inline constexpr double kMaxScoreScale = 4.0;
// The shift range that the in-range scales produce; the kernel clamps to it.
inline constexpr int32_t kMinScoreShift = -15;
inline constexpr int32_t kMaxScoreShift = 3;

// False for NaN, infinities, values <= 0 and values outside
// [kMinScoreScale, kMaxScoreScale].
constexpr bool ScoreScaleInRange(double s) {
  // Written so that NaN compares false.
  return s >= kMinScoreScale && s <= kMaxScoreScale;
}

// A positive normal double x as (multiplier, shift) with
//   x = q * 2^shift, q in [0.5, 1), multiplier = round_half_up(q * 2^31),
// and, when rounding reaches 2^31, multiplier = 2^30 and shift + 1.
// The double is decomposed by its IEEE-754 bits (no frexp/round), so the
// result is the same on every platform and compiler. Shared by the score
// scale below and the output scale (online_softmax.h).
// REQUIRES: x positive and normal.
constexpr ScoreScale QuantizeQ31(double x) {
  const uint64_t bits = __builtin_bit_cast(uint64_t, x);
  const int32_t biased_exponent = static_cast<int32_t>((bits >> 52) & 0x7FF);
  // Normal, so the implicit leading one is present:
  // x = significand * 2^(biased_exponent - 1075), significand in [2^52, 2^53)
  // and q = significand * 2^-53.
  const uint64_t significand =
      (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1} << 52);
  int32_t shift = biased_exponent - 1022;
  uint64_t multiplier = (significand + (uint64_t{1} << 21)) >> 22;
  if (multiplier == (uint64_t{1} << 31)) {
    multiplier >>= 1;
    ++shift;
  }
  return ScoreScale{static_cast<int32_t>(multiplier), shift};
}

// Converts a score scale to (multiplier, shift) by QuantizeQ31.
// REQUIRES: ScoreScaleInRange(s). Out-of-range input returns the pair for
// the nearest bound (NaN maps to kMinScoreScale); validate before calling.
constexpr ScoreScale QuantizeScoreScale(double s) {
  if (!(s >= kMinScoreScale)) s = kMinScoreScale;
  if (s > kMaxScoreScale) s = kMaxScoreScale;
  return QuantizeQ31(s);
}

// The real value a pair stands for, for tests and diagnostics.
constexpr double ScoreScaleValue(ScoreScale scale) {
  double v = static_cast<double>(scale.multiplier);
  int32_t e = scale.shift - 31;
  for (; e > 0; --e) v *= 2.0;
  for (; e < 0; ++e) v *= 0.5;
  return v;
}

}  // namespace npuk

#endif  // NPUK_KERNELS_COMMON_SCORE_SCALE_H_
