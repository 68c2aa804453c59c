// Fixed-point softmax pieces of the attention kernel.
//
// For one row of int32 scores s_j (exact q.k dot products) and the score
// scale (multiplier M, shift S, i.e. scale = M 2^(S-31)):
//   a_j  = max_k s_k - s_j                         (>= 0, < 2^21)
//   y_j  = min(round(a_j * M2 / 2^(11-S)), 24 2^20)  M2 = M log2(e) in Q31,
//          so y_j = a_j * scale * log2(e) in Q20: the exponent in base 2
//   e_j  = min(round(2^15 2^(-y_j / 2^20)), 32767)   2^-frac by polynomial
//   R    = round(2^31 / sum_j e_j)                   (sum >= 32767)
//   p_j  = min(round(e_j R / 2^16), 32767)           (Q15 probabilities)
// and then out = sat8(round(sum_j p_j v_j / 2^15)).
// Every step is integer and deterministic; the CPU backend vectorises the
// same formulas and must match them bit for bit.
#ifndef NPUK_KERNELS_COMMON_SOFTMAX_H_
#define NPUK_KERNELS_COMMON_SOFTMAX_H_

#include <cstdint>

#include "kernels/common/fixed_point.h"
#include "kernels/common/score_scale.h"

namespace npuk::softmax {

inline constexpr int kExpFracBits = 20;              // y in Q20
inline constexpr uint32_t kMaxExponent = 24u << 20;  // 2^-24: e == 0 already
inline constexpr int32_t kOneQ15 = 32767;            // e and p never exceed

// 2^-r for r = r15 / 2^15 in [0, 1), Q16, by a degree-4 polynomial fitted
// on Chebyshev nodes (max error 1.8 / 2^16 with the Horner rounding).
inline constexpr int32_t kExp2Poly[5] = {65536, -45420, 15692, -3488, 448};

constexpr int32_t Exp2NegFracQ16(int32_t r15) {
  int32_t p = kExp2Poly[4];
  for (int i = 3; i >= 0; --i) {
    p = kExp2Poly[i] + fixed::RoundShift32(p * r15, 15);
  }
  return p;
}

// round(2^15 2^(-y / 2^20)), capped at 32767. REQUIRES: y <= kMaxExponent.
constexpr int32_t Exp2NegQ15(uint32_t y) {
  const int n = static_cast<int>(y >> kExpFracBits);
  const int32_t r15 = static_cast<int32_t>((y >> 5) & 0x7FFF);
  const int32_t p = Exp2NegFracQ16(r15);  // in (2^15, 2^16]
  const int32_t e = (p + (int32_t{1} << n)) >> (n + 1);
  return e > kOneQ15 ? kOneQ15 : e;
}

// The per-tile constants derived from the score scale. Out-of-contract
// pairs are clamped to the range QuantizeScoreScale produces, so the kernel
// is defined (if meaningless) for any bytes the host sends.
struct ExpParams {
  uint32_t multiplier;  // M log2(e), Q31 relative to M
  int shift;            // right shift giving Q20: 11 - S, in [8, 26]
};

// log2(e) in Q31.
inline constexpr uint64_t kLog2eQ31 = 3098164010u;

constexpr ExpParams MakeExpParams(int32_t multiplier, int32_t shift) {
  if (multiplier < (int32_t{1} << 30)) multiplier = int32_t{1} << 30;
  if (shift < kMinScoreShift) shift = kMinScoreShift;
  if (shift > kMaxScoreShift) shift = kMaxScoreShift;
  const uint64_t m2 =
      (static_cast<uint64_t>(multiplier) * kLog2eQ31 + (uint64_t{1} << 30)) >>
      31;
  return ExpParams{static_cast<uint32_t>(m2), 11 - shift};
}

// y for a = (row max - score) >= 0.
constexpr uint32_t Exponent(uint32_t a, const ExpParams& params) {
  const uint64_t y = (static_cast<uint64_t>(a) * params.multiplier +
                      (uint64_t{1} << (params.shift - 1))) >>
                     params.shift;
  return y > kMaxExponent ? kMaxExponent : static_cast<uint32_t>(y);
}

// round(2^31 / sum). REQUIRES: 32767 <= sum <= 64 * 32767 (a row), so the
// dividend stays below 2^32: a 32-bit division suffices, which matters on
// cores without a hardware divider (AIE2).
constexpr uint32_t Reciprocal(uint32_t sum) {
  return ((uint32_t{1} << 31) + sum / 2) / sum;
}

constexpr int32_t Probability(int32_t e, uint32_t reciprocal) {
  const uint32_t p = (static_cast<uint32_t>(e) * reciprocal + (1u << 15)) >> 16;
  return p > static_cast<uint32_t>(kOneQ15) ? kOneQ15 : static_cast<int32_t>(p);
}

// sum_j p_j v_j in Q15 to the int8 output.
constexpr int8_t OutputValue(int32_t acc) {
  return fixed::Saturate8(fixed::RoundShift32(acc, 15));
}

}  // namespace npuk::softmax

#endif  // NPUK_KERNELS_COMMON_SOFTMAX_H_
