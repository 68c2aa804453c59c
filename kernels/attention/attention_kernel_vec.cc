// The vectorised attention tile (attention_kernel_vec.h). Per block of 4
// query rows:
//  1. scores: 8 column blocks of 4 x 8, each 8 mmul<4, 8, 8> int8 products
//     (acc32, exact: |s| <= 2^20);
//  2. softmax in 16-lane halves of those blocks (2 rows x 8 columns), the
//     formulas of kernels/common/softmax.h:
//       a  = rowmax - s                        (int32 lanes)
//       y  = min(srs(a M2, shift), 24 2^20)    a in 2^15 digits x M2 in
//                                              2^15 digits (6 VMAC), ups
//       e  = Exp2NegQ15(y): Horner in lanes (p split into 16-bit digits),
//            then (p >> n) by a select chain over the bits of n
//       R  = round(2^31 / rowsum)              scalar, one division a row
//       p  = min(srs(e R, 16), 32767)          R in 16-bit digits
//  3. P v: mmul<4, 4, 8> int16 x int8 over 16 row blocks of v, srs to int8
//     with round half up and saturation (OutputValue).
#include "kernels/attention/attention_kernel_vec.h"

#include "kernels/attention/attention_vec_parts.h"

namespace npuk::attention_vec {
namespace {

enum Region {
  kScores = 0,
  kSoftmax = 1,
  kRows = 2,
  kPv = 3,
  kSetup = 4,
  kKeys = 5,
};

}  // namespace
}  // namespace npuk::attention_vec

extern "C" void attention_vec_blocks(const int8_t* q_blk, const int8_t* k_blk,
                                     const int8_t* v_blk, int8_t* out_blk,
                                     int32_t score_multiplier,
                                     int32_t score_shift) {
  using namespace npuk::attention_vec;  // NOLINT(google-build-using-namespace)
  v::BeginRegion(kSetup);
  const Params params = MakeParams(score_multiplier, score_shift);
  const Consts k = MakeConsts();
  v::BeginRegion(kKeys);
  alignas(64) int8_t kt_blk[kN * kN];
  TransposeKeys(k_blk, kt_blk);
  for (int ib = 0; ib < kN / 4; ++ib) {
    // 1. scores of rows 4 ib .. 4 ib + 3: [column block][half] 16 lanes.
    v::BeginRegion(kScores);
    V32 s[8][2];
    BlockScores(q_blk, kt_blk, ib, s);
    // 2. softmax. Row maxima: lanes across the 8 blocks, then per row.
    v::BeginRegion(kSoftmax);
    v::LoopEntry();
    int32_t row_max[4], row_sum[4];
    for (int h = 0; h < 2; ++h) {
      V32 m = s[0][h];
      for (int jb = 1; jb < 8; ++jb) m = v::Max(m, s[jb][h]);
      v::ChunkMax<8>(m, row_max + 2 * h);
    }
    V32 e[8][2];
    BlockExp(s, row_max, nullptr, params, k, e, row_sum);
    // Reciprocals (one 32-bit division a row) and their 16-bit digits.
    v::BeginRegion(kRows);
    int16_t r_hi[4], r_lo[4];
    Reciprocals(row_sum, nullptr, r_hi, r_lo);
    // Probabilities as int16, cut into the 4 x 4 A blocks of P v.
    v::BeginRegion(kSoftmax);
    v::LoopEntry();
    alignas(64) int16_t p_blk[16][16];  // [j block of 4][4 x 4]
    BlockProbabilities(e, r_hi, r_lo, k, p_blk);
    // 3. P v.
    v::BeginRegion(kPv);
    for (int cb = 0; cb < 8; ++cb) {
      v::Store(
          out_blk + (ib * 8 + cb) * 32,
          v::Srs<int8_t>(BlockPv(p_blk, v_blk, cb), 15, v::Round::kPosInf));
    }
  }
}

extern "C" void attention_64x64_vec(const int8_t* qkv, int8_t* out,
                                    int32_t score_multiplier,
                                    int32_t score_shift) {
  constexpr int n = 64;
  const int8_t* q = qkv;
  const int8_t* k = qkv + n * n;
  const int8_t* vv = qkv + 2 * n * n;
  // The mem tile DMA's blocking (dimensionsToStream), done here in plain
  // C++ and not counted.
  int8_t q_blk[n * n], k_blk[n * n], v_blk[n * n], out_blk[n * n];
  using npuk::attention_vec::Block4x8;
  using npuk::attention_vec::Block8x8;
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < n; ++d) {
      q_blk[Block4x8(i, d)] = q[i * n + d];
      k_blk[Block8x8(i, d)] = k[i * n + d];  // k row-blocked
      v_blk[Block4x8(i, d)] = vv[i * n + d];
    }
  }
  attention_vec_blocks(q_blk, k_blk, v_blk, out_blk, score_multiplier,
                       score_shift);
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < n; ++c) out[i * n + c] = out_blk[Block4x8(i, c)];
  }
}
