// The pieces the vectorised attention kernels share (attention_kernel_vec.cc,
// attention_seq_vec.cc): 16-lane int32 vectors holding two rows x 8 columns
// of a 4 x 8 score block, and the fixed-point softmax of
// kernels/common/softmax.h on them with every product on 16-bit digits.
// Internal to kernels/attention/.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_VEC_PARTS_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_VEC_PARTS_H_

#include <cstdint>

#include "kernels/attention/attention_kernel.h"
#include "kernels/common/softmax.h"
#include "kernels/vec/vec.h"

namespace npuk::attention_vec {

namespace v = ::npuk::vec;
namespace sm = ::npuk::softmax;
inline constexpr int kN = 64;
inline constexpr int L = 16;  // lanes: 2 rows x 8 columns of a 4 x 8 block
using V16 = v::Vec<int16_t, L>;
using V32 = v::Vec<int32_t, L>;
using A64 = v::Acc<64, L>;

inline V32 Splat(int32_t x) { return v::Broadcast<L>(x); }

// t = hi 2^16 + lo, int16 digits (round half up split).
inline void Split32(const V32& t, V16* hi, V16* lo) {
  const A64 a = v::Ups<64>(t, 0);
  *hi = v::Srs<int16_t>(a, 16, v::Round::kPosInf);
  *lo = v::Srs<int16_t>(v::SubAcc(a, v::Ups<64>(*hi, 16)), 0, v::Round::kFloor);
}

// int32 lanes known to fit int16, as int16 lanes.
inline V16 Narrow(const V32& x) {
  return v::Srs<int16_t>(v::Ups<64>(x, 0), 0, v::Round::kFloor);
}

struct Params {
  int16_t m[3];  // M2 = m2 2^30 + m1 2^15 + m0, 15-bit digits
  int shift;     // 8..26
};

// Vector constants, broadcast once per call (kept in registers or loaded
// from tile memory, as compiled code does with loop invariants).
struct Consts {
  V32 max_exponent, one, one_q15, zero;
  V32 poly[5];
};

inline Consts MakeConsts() {
  Consts c;
  c.max_exponent = Splat(static_cast<int32_t>(sm::kMaxExponent));
  c.one = Splat(1);
  c.one_q15 = Splat(sm::kOneQ15);
  c.zero = Splat(0);
  for (int i = 0; i < 5; ++i) c.poly[i] = Splat(sm::kExp2Poly[i]);
  return c;
}

inline Params MakeParams(int32_t multiplier, int32_t shift) {
  // MakeExpParams with its 64-bit product as 32-bit partial products.
  v::Scalar(8);
  if (multiplier < (int32_t{1} << 30)) multiplier = int32_t{1} << 30;
  if (shift < kMinScoreShift) shift = kMinScoreShift;
  if (shift > kMaxScoreShift) shift = kMaxScoreShift;
  const uint64_t m2 = (v::MulWideU32(static_cast<uint32_t>(multiplier),
                                     static_cast<uint32_t>(sm::kLog2eQ31)) +
                       (uint64_t{1} << 30)) >>
                      31;
  v::Scalar(4 + 6);
  const uint32_t m = static_cast<uint32_t>(m2);
  return Params{
      {static_cast<int16_t>(m & 0x7FFF),
       static_cast<int16_t>((m >> 15) & 0x7FFF), static_cast<int16_t>(m >> 30)},
      11 - shift};
}

// y = min(round(a M2 / 2^shift), 24 2^20) for a in [0, 2^21).
inline V32 Exponent(const V32& a, const Params& p, const Consts& k) {
  const A64 a_acc = v::Ups<64>(a, 0);
  const V16 a1 = v::Srs<int16_t>(a_acc, 15, v::Round::kFloor);  // < 2^6
  const V16 a0 = Narrow(v::BitAnd(a, int32_t{0x7FFF}));
  const A64 p0 = v::Mul<64>(a0, p.m[0]);
  const A64 p15 = v::Mac(v::Mul<64>(a0, p.m[1]), a1, p.m[0]);
  const A64 p30 = v::Mac(v::Mul<64>(a0, p.m[2]), a1, p.m[1]);
  const A64 p45 = v::Mul<64>(a1, p.m[2]);
  // P = P0 + 2^15 P15 + 2^30 (P30 + 2^15 P45); P15 < 2^31, the bracket <
  // 2^24.
  const V32 high =
      v::Add(v::Srs<int32_t>(p30, 0, v::Round::kFloor),
             v::ShiftLeft(v::Srs<int32_t>(p45, 0, v::Round::kFloor), 15));
  const A64 total = v::AddAcc(
      v::AddAcc(p0, v::Ups<64>(v::Srs<int32_t>(p15, 0, v::Round::kFloor), 15)),
      v::Ups<64>(high, 30));
  // Saturation to int32 is below the cap either way.
  return v::Min(v::Srs<int32_t>(total, p.shift, v::Round::kPosInf),
                k.max_exponent);
}

// Exp2NegQ15(y) in lanes.
inline V32 Exp2Neg(const V32& y, const Consts& k) {
  const V32 n = v::ShiftRight(y, sm::kExpFracBits);
  const V16 r15 = Narrow(v::BitAnd(v::ShiftRight(y, 5), int32_t{0x7FFF}));
  V32 p = k.poly[4];
  for (int i = 3; i >= 0; --i) {
    V16 ph, pl;  // |p| <= 2^16: ph in {-1, 0, 1}
    Split32(p, &ph, &pl);
    const A64 prod = v::Mac(
        v::Ups<64>(v::Srs<int32_t>(v::Mul<64>(ph, r15), 0, v::Round::kFloor),
                   16),
        pl, r15);
    p = v::Add(v::Srs<int32_t>(prod, 15, v::Round::kPosInf), k.poly[i]);
  }
  // (p + 2^n) >> (n + 1) = ((p >> n) + 1) >> 1, p >> n by the bits of n.
  constexpr int kBits[] = {1, 2, 4, 8, 16};
  for (int b : kBits) {
    const v::Mask<L> set = v::NonZero(v::BitAnd(n, int32_t{b}));
    p = v::Select(p, v::ShiftRight(p, b), set);
  }
  const V32 e = v::ShiftRight(v::Add(p, k.one), 1);
  return v::Min(e, k.one_q15);
}

// Two row values as lanes 0-7 and 8-15.
inline V32 RowPair(int32_t first, int32_t second) {
  return v::Select(Splat(first), Splat(second), v::UpperHalf<L>());
}

// k as the DMA can deliver it, row-blocked: k_rows [8 j blocks][8 d
// blocks][8 x 8 (j, d)] (8-byte runs of each key row), into the B blocks of
// qkᵀ, kt_blk [8 d blocks][8 j blocks][8 x 8 (d, j)]: one pipelined loop of
// 64 loads, 64 8 x 8 transposes and 64 stores.
inline void TransposeKeys(const int8_t* k_rows, int8_t* kt_blk) {
  v::LoopEntry();
  for (int jb = 0; jb < 8; ++jb) {
    for (int db = 0; db < 8; ++db) {
      v::Store(kt_blk + (db * 8 + jb) * 64,
               v::Transpose<8, 8>(v::Load<64>(k_rows + (jb * 8 + db) * 64)));
    }
  }
}

// Scores of rows 4 ib .. 4 ib + 3 against the 64 keys of kt_blk:
// s[column block][half], 16 lanes each (rows 4 ib + 2 half, + 1; 8 keys).
inline void BlockScores(const int8_t* q_blk, const int8_t* kt_blk, int ib,
                        V32 s[8][2]) {
  for (int jb = 0; jb < 8; jb += 2) {
    // Two column blocks per pass share each A (q) block load.
    v::LoopEntry();
    v::Mmul<4, 8, 8, int8_t, int8_t> m0, m1;
    for (int db = 0; db < 8; ++db) {
      const v::Vec<int8_t, 32> a = v::Load<32>(q_blk + (ib * 8 + db) * 32);
      m0.Mac(a, v::Load<64>(kt_blk + (db * 8 + jb) * 64));
      m1.Mac(a, v::Load<64>(kt_blk + (db * 8 + jb + 1) * 64));
    }
    const v::Vec<int32_t, 32> c0 =
        v::Srs<int32_t>(m0.Result(), 0, v::Round::kFloor);
    const v::Vec<int32_t, 32> c1 =
        v::Srs<int32_t>(m1.Result(), 0, v::Round::kFloor);
    s[jb][0] = v::Half(c0, 0);
    s[jb][1] = v::Half(c0, 1);
    s[jb + 1][0] = v::Half(c1, 0);
    s[jb + 1][1] = v::Half(c1, 1);
  }
}

// e = Exp2NegQ15(Exponent(row max - s)) of 4 rows and each row's sum. With
// `visible` (the keys each lane's row sees), the others get a = 0 and e = 0,
// so they add nothing.
inline void BlockExp(const V32 s[8][2], const int32_t row_max[4],
                     const v::Mask<L> (*visible)[2], const Params& params,
                     const Consts& k, V32 e[8][2], int32_t row_sum[4]) {
  for (int h = 0; h < 2; ++h) {
    const V32 mx = RowPair(row_max[2 * h], row_max[2 * h + 1]);
    V32 sum = k.zero;
    for (int jb = 0; jb < 8; ++jb) {
      V32 a = v::Sub(mx, s[jb][h]);
      if (visible != nullptr) a = v::Select(k.zero, a, visible[jb][h]);
      e[jb][h] = Exp2Neg(Exponent(a, params, k), k);
      if (visible != nullptr) {
        e[jb][h] = v::Select(k.zero, e[jb][h], visible[jb][h]);
      }
      sum = v::Add(sum, e[jb][h]);
    }
    v::ChunkSum<8>(sum, row_sum + 2 * h);
  }
}

// R = round(2^31 / row sum), one 32-bit division a row, as 16-bit digits
// (r_hi 2^16 + r_lo). With `keys`, a row that sees none (keys[r] == 0) has
// no reciprocal (R = 0, so its probabilities are 0).
inline void Reciprocals(const int32_t row_sum[4], const int32_t* keys,
                        int16_t r_hi[4], int16_t r_lo[4]) {
  for (int r = 0; r < 4; ++r) {
    v::Scalar(keys != nullptr ? 7 : 6);
    uint32_t recip = 0;
    if (keys == nullptr || keys[r] > 0) {
      v::UDiv();
      recip = sm::Reciprocal(static_cast<uint32_t>(row_sum[r]));
    }
    const int32_t hi = static_cast<int32_t>((recip + (1u << 15)) >> 16);
    r_hi[r] = static_cast<int16_t>(hi);
    r_lo[r] = static_cast<int16_t>(static_cast<int32_t>(recip) - hi * 65536);
  }
}

// The probabilities p = min(srs(e R, 16), 32767) of 4 rows (R = r_hi 2^16 +
// r_lo, each row's reciprocal) as int16, cut into the 4 x 4 A blocks of
// P v: p_blk[j block of 4][4 x 4].
inline void BlockProbabilities(const V32 e[8][2], const int16_t r_hi[4],
                               const int16_t r_lo[4], const Consts& k,
                               int16_t p_blk[16][16]) {
  V16 rh[2], rl[2];
  for (int h = 0; h < 2; ++h) {
    rh[h] = Narrow(RowPair(r_hi[2 * h], r_hi[2 * h + 1]));
    rl[h] = Narrow(RowPair(r_lo[2 * h], r_lo[2 * h + 1]));
  }
  for (int jb = 0; jb < 8; ++jb) {
    V16 ph[2];
    for (int h = 0; h < 2; ++h) {
      const V16 e16 = Narrow(e[jb][h]);
      const A64 prod = v::Mac(
          v::Ups<64>(
              v::Srs<int32_t>(v::Mul<64>(e16, rh[h]), 0, v::Round::kFloor), 16),
          e16, rl[h]);
      ph[h] = Narrow(
          v::Min(v::Srs<int32_t>(prod, 16, v::Round::kPosInf), k.one_q15));
    }
    const v::Vec<int16_t, 32> block = v::Concat(ph[0], ph[1]);  // 4 x 8
    v::Store(p_blk[2 * jb], v::FilterChunks<4>(block, false));
    v::Store(p_blk[2 * jb + 1], v::FilterChunks<4>(block, true));
  }
}

// Column block cb of P v for 4 rows: one pipelined loop of 16 mmul<4, 4, 8>
// int16 x int8 products over the 64 keys (acc32, exact).
inline v::Acc<32, 32> BlockPv(const int16_t p_blk[16][16], const int8_t* v_blk,
                              int cb) {
  v::LoopEntry();
  v::Mmul<4, 4, 8, int16_t, int8_t> m;
  for (int jb = 0; jb < 16; ++jb) {
    m.Mac(v::Load<16>(&p_blk[jb][0]), v::Load<32>(v_blk + (jb * 8 + cb) * 32));
  }
  return m.Result();
}

}  // namespace npuk::attention_vec

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_VEC_PARTS_H_
