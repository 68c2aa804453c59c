// Online softmax over a whole row of keys, composed from 64-key tiles
// (issue 15). Freestanding C++20 (host compiler and Peano): no libm, only
// integer arithmetic with the roundings of fixed_point.h, so every backend
// that combines the same tiles in the same order gets the same bytes.
//
// A tile t of a row gives, by the formulas of softmax.h restricted to the
// row's visible keys of that tile (kernels/attention/README.md):
//   m_t   the tile's max score (int32, exact q.k),
//   S_t   sum_j e_j (Q15, e of the max key is 32767, so S_t >= 32767),
//   o_t   sum_j p_j v_j with the tile-local probabilities p_j (Q15).
// The row state (m, W, O) starts as the row's first visible tile and takes
// the next ones, in increasing key order, by
//   m' = max(m, m_t)
//   W_a = scale(W,   m' - m),   W_b = scale(S_t, m' - m_t)
//   W' = W_a + W_b
//   alpha = round(W_a 2^30 / W'),  beta = 2^30 - alpha
//   O'_c = round((alpha O_c + beta o_t,c) / 2^30)
// with scale(w, a) = round(w 2^(-a score_scale log2 e)): the exponent of
// softmax.h (Q20, capped at 2^-40 instead of 2^-24) and 2^-frac by the
// same polynomial. The output is out_c = sat8(round(O_c / (2^15 os))) for
// the output scale os. A row with one visible tile is never combined, so
// for Lk <= 64 and os = 1 the bytes are attention_64x64's.
#ifndef NPUK_KERNELS_COMMON_ONLINE_SOFTMAX_H_
#define NPUK_KERNELS_COMMON_ONLINE_SOFTMAX_H_

#include <cstdint>

#include "kernels/common/fixed_point.h"
#include "kernels/common/score_scale.h"
#include "kernels/common/softmax.h"

namespace npuk::online {

inline constexpr int kWeightBits = 30;  // alpha, beta in Q30
// Tile weights below 2^-40 of the running weight are dropped (exactly 0):
// W < 2^27, so they are below 2^-13 of one unit of W already.
inline constexpr uint32_t kMaxTileExponent = 40u << softmax::kExpFracBits;

// The base-2 exponent of the score distance a >= 0 (Q20), as
// softmax::Exponent but capped at kMaxTileExponent.
constexpr uint32_t TileExponent(uint32_t a, const softmax::ExpParams& params) {
  const uint64_t y = (static_cast<uint64_t>(a) * params.multiplier +
                      (uint64_t{1} << (params.shift - 1))) >>
                     params.shift;
  return y > kMaxTileExponent ? kMaxTileExponent : static_cast<uint32_t>(y);
}

// round(w 2^(-y / 2^20)); 0 when y reaches kMaxTileExponent.
// REQUIRES: w < 2^32.
constexpr uint32_t ScaleWeight(uint32_t w, uint32_t y) {
  if (y >= kMaxTileExponent) return 0;
  const int n = static_cast<int>(y >> softmax::kExpFracBits);
  const int32_t r15 = static_cast<int32_t>((y >> 5) & 0x7FFF);
  const uint64_t p = static_cast<uint64_t>(softmax::Exp2NegFracQ16(r15));
  const int s = 16 + n;  // in [16, 55]
  return static_cast<uint32_t>(
      (static_cast<uint64_t>(w) * p + (uint64_t{1} << (s - 1))) >> s);
}

// The weights of the running state (a) and of the new tile (b) after the
// max moved to max(m_a, m_b): returns alpha in Q30, beta = 2^30 - alpha,
// and writes the combined weight. REQUIRES: the side with the larger max
// has w >= 32767 (true of S_t and of every W).
struct Mix {
  int64_t alpha;
  int64_t beta;
  uint32_t weight;
  int32_t max;
};

constexpr Mix MixWeights(int32_t m_a, uint32_t w_a, int32_t m_b, uint32_t w_b,
                         const softmax::ExpParams& params) {
  uint32_t wa = w_a;
  uint32_t wb = w_b;
  int32_t m = m_a;
  if (m_b > m_a) {
    wa = ScaleWeight(w_a,
                     TileExponent(static_cast<uint32_t>(m_b - m_a), params));
    m = m_b;
  } else {
    wb = ScaleWeight(w_b,
                     TileExponent(static_cast<uint32_t>(m_a - m_b), params));
  }
  const uint32_t total = wa + wb;
  const int64_t alpha = static_cast<int64_t>(
      ((static_cast<uint64_t>(wa) << kWeightBits) + total / 2) / total);
  return Mix{alpha, (int64_t{1} << kWeightBits) - alpha, total, m};
}

// round((alpha o_a + beta o_b) / 2^30). |o| < 2^23, so the sum fits easily.
constexpr int32_t MixValue(int32_t o_a, int32_t o_b, const Mix& mix) {
  return static_cast<int32_t>(
      fixed::RoundShift(mix.alpha * o_a + mix.beta * o_b, kWeightBits));
}

// The output scale os as the kernel receives it: 1/os = multiplier
// 2^(shift - 31), multiplier in [2^30, 2^31) (the score scale's idiom).
struct OutputScale {
  int32_t multiplier;
  int32_t shift;
};

inline constexpr double kMinOutputScale = 1.0 / 65536.0;  // 2^-16
inline constexpr double kMaxOutputScale = 65536.0;        // 2^16
inline constexpr int32_t kMinOutputShift = -15;
inline constexpr int32_t kMaxOutputShift = 17;

// False for NaN, infinities, values <= 0 and values outside
// [kMinOutputScale, kMaxOutputScale].
constexpr bool OutputScaleInRange(double os) {
  return os >= kMinOutputScale && os <= kMaxOutputScale;
}

// 1/os (one IEEE division, correctly rounded everywhere) decomposed by its
// bits as QuantizeScoreScale does. REQUIRES: OutputScaleInRange(os);
// out-of-range values map to the nearest bound, NaN to 1.
constexpr OutputScale QuantizeOutputScale(double os) {
  if (!(os >= kMinOutputScale)) os = os > 0 ? kMinOutputScale : 1.0;
  if (os > kMaxOutputScale) os = kMaxOutputScale;
  const ScoreScale q = QuantizeQ31(1.0 / os);
  return OutputScale{q.multiplier, q.shift};
}

// sat8(round(o / (2^15 os))) for o in Q15. With os = 1 (multiplier 2^30,
// shift 1) this is softmax::OutputValue(o) exactly. Out-of-contract pairs
// are clamped so any bytes are defined.
constexpr int8_t OutputValue(int32_t o, OutputScale scale) {
  int32_t m = scale.multiplier;
  if (m < (int32_t{1} << 30)) m = int32_t{1} << 30;
  int32_t sh = scale.shift;
  if (sh < kMinOutputShift) sh = kMinOutputShift;
  if (sh > kMaxOutputShift) sh = kMaxOutputShift;
  const int64_t r =
      fixed::RoundShift(static_cast<int64_t>(o) * m, 46 - sh);  // [29, 61]
  return fixed::Saturate8(r < -128 ? -128
                                   : (r > 127 ? 127 : static_cast<int32_t>(r)));
}

}  // namespace npuk::online

#endif  // NPUK_KERNELS_COMMON_ONLINE_SOFTMAX_H_
