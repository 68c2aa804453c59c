// The vectorised sequence attention (attention_seq_vec.h). Per key tile and
// block of 4 query rows:
//  1. scores, softmax and probabilities as attention_vec_blocks computes
//     them, except that keys a row does not see (limit) are masked: left
//     out of the row's max, their exponent forced to 0 and their e to 0;
//  2. P v: mmul<4, 4, 8> int16 x int8, kept as exact int32 (Q15) o_t;
//  3. the online recurrence: per row on the scalar unit, alpha and beta of
//     online::MixWeights (alpha = 0, beta = 2^30 for a row's first visible
//     tile, alpha = 2^30, beta = 0 for a row that sees none of this one),
//     then per lane
//       acc' = round((alpha acc + beta o) / 2^30)
//     with acc, o = x1 2^16 + x0 and alpha, beta = a1 2^16 + a0 (int16
//     digits, round half up split):
//       T32 = a1 x1 + b1 y1,  T16 = a1 x0 + a0 x1 + b1 y0 + b0 y1,
//       T0  = a0 x0 + b0 y0   (acc64),
//       acc' = 4 T32 + srs(T16 2^16 + T0, 30)   (exact: 4 T32 2^30 is a
//       multiple of 2^30, so the rounding is the whole sum's).
// The end: out = sat8(round(acc m / 2^(46 - sh))) (online::OutputValue) with
// m = 2^30 + mh 2^15 + ml:
//   acc m = 2^30 (acc + 2 x1 mh) + 2^15 (2 x1 ml + x0 mh) + x0 ml.
#include "kernels/attention/attention_seq_vec.h"

#include "kernels/attention/attention_kernel_vec.h"
#include "kernels/attention/attention_vec_parts.h"
#include "kernels/common/fixed_point.h"
#include "kernels/common/online_softmax.h"

namespace npuk::attention_vec {
namespace {

constexpr int64_t kOne30 = int64_t{1} << online::kWeightBits;

// x = hi 2^16 + lo with lo in [-2^15, 2^15): scalar digits of alpha/beta.
struct Digits {
  int16_t hi;
  int16_t lo;
};

Digits SplitScalar(int64_t x) {
  const int64_t hi = (x + (int64_t{1} << 15)) >> 16;
  return Digits{static_cast<int16_t>(hi), static_cast<int16_t>(x - hi * 65536)};
}

// Digits of two rows as lanes 0-7 / 8-15.
V16 DigitPair(int16_t first, int16_t second) {
  return Narrow(RowPair(first, second));
}

}  // namespace
}  // namespace npuk::attention_vec

extern "C" void attention_seq_vec_begin(AttentionSeqVecState* state) {
  namespace v = ::npuk::vec;
  v::BeginRegion(npuk::attention_vec::kSeqSetup);
  v::LoopEntry();
  for (int r = 0; r < 64; ++r) state->seen[r] = 0;
  v::ScalarMem(64);
}

extern "C" void attention_seq_vec_step(const int8_t* q_blk, const int8_t* k_blk,
                                       const int8_t* v_blk,
                                       const int32_t* limit,
                                       int32_t score_multiplier,
                                       int32_t score_shift,
                                       AttentionSeqVecState* state) {
  using namespace npuk::attention_vec;  // NOLINT(google-build-using-namespace)
  namespace online = ::npuk::online;
  v::BeginRegion(kSeqSetup);
  const Params params = MakeParams(score_multiplier, score_shift);
  const sm::ExpParams exp_params =
      sm::MakeExpParams(score_multiplier, score_shift);
  const Consts k = MakeConsts();
  // Column index within a column block: lane % 8.
  alignas(64) static constexpr int32_t kLaneCol[L] = {0, 1, 2, 3, 4, 5, 6, 7,
                                                      0, 1, 2, 3, 4, 5, 6, 7};
  const V32 lane_col = v::Load<L>(kLaneCol);
  const V32 min_score = Splat(INT32_MIN);
  v::BeginRegion(kSeqKeys);
  alignas(64) int8_t kt_blk[kN * kN];
  TransposeKeys(k_blk, kt_blk);
  for (int ib = 0; ib < kN / 4; ++ib) {
    v::BeginRegion(kSeqRows);
    const int32_t* lim = limit + 4 * ib;
    v::ScalarMem(4);
    v::Scalar(4);
    if (lim[0] == 0 && lim[1] == 0 && lim[2] == 0 && lim[3] == 0) continue;
    const bool masked =
        lim[0] < kN || lim[1] < kN || lim[2] < kN || lim[3] < kN;
    // 1. scores.
    v::BeginRegion(kSeqScores);
    V32 s[8][2];
    BlockScores(q_blk, kt_blk, ib, s);
    // Softmax over each row's visible keys.
    v::BeginRegion(kSeqSoftmax);
    v::LoopEntry();
    v::Mask<L> visible[8][2]{};
    if (masked) {
      for (int h = 0; h < 2; ++h) {
        const V32 pair = RowPair(lim[2 * h], lim[2 * h + 1]);
        for (int jb = 0; jb < 8; ++jb) {
          visible[jb][h] = v::LessThan(lane_col, v::Sub(pair, Splat(8 * jb)));
        }
      }
    }
    int32_t row_max[4], row_sum[4];
    for (int h = 0; h < 2; ++h) {
      V32 m = masked ? v::Select(min_score, s[0][h], visible[0][h]) : s[0][h];
      for (int jb = 1; jb < 8; ++jb) {
        m = v::Max(m, masked ? v::Select(min_score, s[jb][h], visible[jb][h])
                             : s[jb][h]);
      }
      v::ChunkMax<8>(m, row_max + 2 * h);
    }
    V32 e[8][2];
    BlockExp(s, row_max, masked ? visible : nullptr, params, k, e, row_sum);
    // Reciprocals (a row that sees nothing has none), then probabilities.
    v::BeginRegion(kSeqRows);
    int16_t r_hi[4], r_lo[4];
    Reciprocals(row_sum, lim, r_hi, r_lo);
    v::BeginRegion(kSeqSoftmax);
    v::LoopEntry();
    alignas(64) int16_t p_blk[16][16];
    BlockProbabilities(e, r_hi, r_lo, k, p_blk);
    // 2. P v as exact int32 (Q15): o[c block] 4 x 8.
    v::BeginRegion(kSeqPv);
    v::Vec<int32_t, 32> o[8];
    for (int cb = 0; cb < 8; ++cb) {
      o[cb] = v::Srs<int32_t>(BlockPv(p_blk, v_blk, cb), 0, v::Round::kFloor);
    }
    // 3. The recurrence: alpha and beta per row (scalar unit).
    v::BeginRegion(kSeqRows);
    Digits alpha[4], beta[4];
    for (int r = 0; r < 4; ++r) {
      const int row = 4 * ib + r;
      v::Scalar(4);
      v::ScalarMem(3);
      int64_t a = kOne30;
      if (lim[r] == 0) {
        // Unchanged: the row sees no key of this tile.
      } else if (state->seen[row] == 0) {
        a = 0;
        state->seen[row] = 1;
        state->max[row] = row_max[r];
        state->weight[row] = static_cast<uint32_t>(row_sum[r]);
        v::ScalarMem(3);
      } else {
        // MixWeights: TileExponent's and ScaleWeight's 64-bit products as
        // 32-bit partial products (MulWideU32's 12 operations each), the
        // 2^-frac polynomial and the rest (~40), and the 64 / 32-bit
        // division of alpha (counted as two 32-bit divisions).
        v::Scalar(40 + 2 * 12);
        v::UDiv();
        v::UDiv();
        const online::Mix mix =
            online::MixWeights(state->max[row], state->weight[row], row_max[r],
                               static_cast<uint32_t>(row_sum[r]), exp_params);
        a = mix.alpha;
        state->max[row] = mix.max;
        state->weight[row] = mix.weight;
        v::ScalarMem(2);
      }
      alpha[r] = SplitScalar(a);
      beta[r] = SplitScalar(kOne30 - a);
      v::Scalar(6);
    }
    // Per lane, in 2-row halves of each 4 x 8 block.
    v::BeginRegion(kSeqMix);
    v::LoopEntry();
    V16 a1[2], a0[2], b1[2], b0[2];
    for (int h = 0; h < 2; ++h) {
      a1[h] = DigitPair(alpha[2 * h].hi, alpha[2 * h + 1].hi);
      a0[h] = DigitPair(alpha[2 * h].lo, alpha[2 * h + 1].lo);
      b1[h] = DigitPair(beta[2 * h].hi, beta[2 * h + 1].hi);
      b0[h] = DigitPair(beta[2 * h].lo, beta[2 * h + 1].lo);
    }
    for (int cb = 0; cb < 8; ++cb) {
      int32_t* acc_blk = state->acc + (ib * 8 + cb) * 32;
      for (int h = 0; h < 2; ++h) {
        const V32 x = v::Load<16>(acc_blk + 16 * h);
        const V32 y = v::Half(o[cb], h);
        V16 x1, x0, y1, y0;
        Split32(x, &x1, &x0);
        Split32(y, &y1, &y0);
        const A64 t32 = v::Mac(v::Mul<64>(x1, a1[h]), y1, b1[h]);
        const A64 t16 =
            v::Mac(v::Mac(v::Mac(v::Mul<64>(x0, a1[h]), x1, a0[h]), y0, b1[h]),
                   y1, b0[h]);
        const A64 t0 = v::Mac(v::Mul<64>(x0, a0[h]), y0, b0[h]);
        const A64 z = v::AddAcc(
            v::Ups<64>(v::Srs<int32_t>(t16, 0, v::Round::kFloor), 16), t0);
        const V32 mixed =
            v::Add(v::ShiftLeft(v::Srs<int32_t>(t32, 0, v::Round::kFloor), 2),
                   v::Srs<int32_t>(z, online::kWeightBits, v::Round::kPosInf));
        v::Store(acc_blk + 16 * h, mixed);
      }
    }
  }
}

extern "C" void attention_seq_vec_end(const AttentionSeqVecState* state,
                                      int8_t* out_blk,
                                      int32_t output_multiplier,
                                      int32_t output_shift) {
  using namespace npuk::attention_vec;  // NOLINT(google-build-using-namespace)
  namespace online = ::npuk::online;
  v::BeginRegion(kSeqSetup);
  // OutputValue's clamps of out-of-contract pairs.
  int32_t m = output_multiplier;
  if (m < (int32_t{1} << 30)) m = int32_t{1} << 30;
  int32_t sh = output_shift;
  if (sh < online::kMinOutputShift) sh = online::kMinOutputShift;
  if (sh > online::kMaxOutputShift) sh = online::kMaxOutputShift;
  const int shift = 46 - sh;  // [29, 61]
  const int32_t rest = m - (int32_t{1} << 30);
  const auto mh = static_cast<int16_t>(rest >> 15);
  const auto ml = static_cast<int16_t>(rest & 0x7FFF);
  v::Scalar(10);
  const V32 zero = Splat(0);
  v::BeginRegion(kSeqOutput);
  for (int ib = 0; ib < kN / 4; ++ib) {
    v::LoopEntry();
    v::Mask<L> seen[2];
    for (int h = 0; h < 2; ++h) {
      v::ScalarMem(2);
      seen[h] = v::NonZero(RowPair(state->seen[4 * ib + 2 * h],
                                   state->seen[4 * ib + 2 * h + 1]));
    }
    for (int cb = 0; cb < 8; ++cb) {
      const int32_t* acc_blk = state->acc + (ib * 8 + cb) * 32;
      V32 half[2];
      for (int h = 0; h < 2; ++h) {
        // A row never seen holds stale lanes: use 0 there.
        const V32 x = v::Select(zero, v::Load<16>(acc_blk + 16 * h), seen[h]);
        V16 x1, x0;
        Split32(x, &x1, &x0);
        const V32 u = v::Add(
            x,
            v::ShiftLeft(
                v::Srs<int32_t>(v::Mul<64>(x1, mh), 0, v::Round::kFloor), 1));
        const A64 w = v::AddAcc(
            v::Ups<64>(v::ShiftLeft(v::Srs<int32_t>(v::Mul<64>(x1, ml), 0,
                                                    v::Round::kFloor),
                                    1),
                       0),
            v::Mul<64>(x0, mh));
        const A64 total = v::AddAcc(
            v::AddAcc(v::Ups<64>(u, 30),
                      v::Ups<64>(v::Srs<int32_t>(w, 0, v::Round::kFloor), 15)),
            v::Mul<64>(x0, ml));
        // |acc m| < 2^54 and shift >= 29: the rounded value fits int32.
        half[h] = v::Srs<int32_t>(total, shift, v::Round::kPosInf);
      }
      // Saturated to int8 from 32 acc32 lanes (srs of a v32acc32, as the
      // tile kernel's output).
      v::Store(out_blk + (ib * 8 + cb) * 32,
               v::Srs<int8_t>(v::Ups<32>(v::Concat(half[0], half[1]), 0), 0,
                              v::Round::kFloor));
    }
  }
}

namespace npuk::attention_vec {

void AttentionSeqVec(const SeqAttentionArgs& a, size_t first, size_t count) {
  constexpr int n = 64;
  const size_t per_head = static_cast<size_t>(SeqTiles(a.lq));
  AttentionSeqVecState state{};  // defined bytes in rows never seen
  int8_t q_blk[n * n], k_blk[n * n], v_blk[n * n], out_blk[n * n];
  int32_t limit[n];
  const int32_t shift = a.lk - a.lq;
  for (size_t u = first; u < first + count; ++u) {
    const auto h = static_cast<int32_t>(u / per_head);
    const int32_t q0 = static_cast<int32_t>(u % per_head) * n;
    const int rows = a.lq - q0 < n ? a.lq - q0 : n;
    const int8_t* q = a.q + (static_cast<size_t>(h) * a.lq + q0) * n;
    const int8_t* k = a.k + static_cast<size_t>(h) * a.lk * n;
    const int8_t* v = a.v + static_cast<size_t>(h) * a.lk * n;
    // The mem tile DMA's blocking (attention_64x64_vec's), zero beyond the
    // sequence: not counted.
    for (int i = 0; i < n; ++i) {
      for (int d = 0; d < n; ++d) {
        q_blk[Block4x8(i, d)] = i < rows ? q[i * n + d] : int8_t{0};
      }
    }
    attention_seq_vec_begin(&state);
    const int32_t end = a.causal ? q0 + rows + shift : a.lk;
    for (int32_t k0 = 0; k0 < end; k0 += n) {
      const int keys = a.lk - k0 < n ? a.lk - k0 : n;
      for (int j = 0; j < n; ++j) {
        for (int d = 0; d < n; ++d) {
          const int8_t kv = j < keys ? k[(k0 + j) * n + d] : int8_t{0};
          const int8_t vv = j < keys ? v[(k0 + j) * n + d] : int8_t{0};
          k_blk[Block8x8(j, d)] = kv;
          v_blk[Block4x8(j, d)] = vv;
        }
      }
      for (int r = 0; r < n; ++r) {
        int32_t visible =
            r >= rows ? 0 : (a.causal ? q0 + r + shift + 1 : a.lk);
        if (visible > a.lk) visible = a.lk;
        visible -= k0;
        limit[r] = visible < 0 ? 0 : (visible > n ? n : visible);
      }
      attention_seq_vec_step(q_blk, k_blk, v_blk, limit,
                             a.score_scale.multiplier, a.score_scale.shift,
                             &state);
    }
    attention_seq_vec_end(&state, out_blk, a.output_scale.multiplier,
                          a.output_scale.shift);
    int8_t* out = a.out + (static_cast<size_t>(h) * a.lq + q0) * n;
    for (int i = 0; i < rows; ++i) {
      for (int c = 0; c < n; ++c) {
        out[i * n + c] = out_blk[Block4x8(i, c)];
      }
    }
  }
}

}  // namespace npuk::attention_vec
