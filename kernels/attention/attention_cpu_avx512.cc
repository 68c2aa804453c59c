// The AVX-512 VNNI path of the attention kernel's CPU backend (compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512vnni on x86 only; called after a
// run-time CPU check, HasAvx512Vnni()). Never compiled for the AIE cores.
//
// Same bytes as attention_64x64, by the rules of attention_cpu_avx2.cc:
// exact integer sums may be reordered, every rounding step is the formula
// of kernels/common/softmax.h lane by lane.
//
// Per tile, four rows at a time, everything in L1:
//  - Scores with vpdpbusd (unsigned x signed bytes, four products per
//    lane): k + 128 is the unsigned operand, q the signed one, so a lane
//    holds s'_ij = q_i.(k_j + 128) = s_ij + 128 sum_d q_id. The extra term
//    is the same for every j of row i, and the softmax only uses
//    a_ij = max_k s'_ik - s'_ij = max_k s_ik - s_ij: exact, no correction.
//    |s'| <= 64 * 128 * 255 < 2^21, so nothing overflows.
//  - The softmax of a row in four 16-lane vectors (the 2^-frac polynomial
//    in 32 int16 lanes, Exp2NegQ15x2), one 32-bit division per row.
//  - p.v with vpdpwssd on int16 pairs (p_i,2j', p_i,2j'+1) x (v_2j',c,
//    v_2j'+1,c); |sum| <= 64 * 32767 * 128 < 2^31.
// The small fixed loops carry unroll pragmas: without them GCC 12 keeps the
// accumulator arrays in memory (a load and a store around every vpdp*),
// which cost about 2.5x.
#include <cstdint>
#include <cstring>

#include "kernels/attention/attention_cpu.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/common/softmax.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__)
// GCC 12's AVX-512 header warnings (bug 105593) are turned off for this
// file in CMakeLists.txt.
#include <immintrin.h>

namespace npuk::cpu {
namespace {

constexpr int kN = static_cast<int>(kAttentionTokens);
constexpr int kD = static_cast<int>(kAttentionDims);
constexpr int kQuads = kD / 4;    // int8 quads per row: 16
constexpr int kBlocks = kN / 16;  // 16-lane vectors per row: 4
constexpr int kRows = 4;          // rows per block (registers: 16 sums)

// softmax::Exp2NegFracQ16 on int16 lanes, 32 at a time. Each Horner step
// c + ((p r + 2^14) >> 15) is c + vpmulhrsw(p, r), which rounds exactly so.
// The coefficients exceed int16 from the third step on, so those steps
// carry an offset: u = p3 + 32768 (p3 = c1 + t fits int16 only shifted),
// and p3 r = u r - 32768 r gives p4 - c0 = mulhrs(u, r) - r, which is in
// [-32767, 0]. Exp2Frac16Exact checks every r15 at compile time.
constexpr int16_t MulHrs(int32_t a, int32_t b) {  // vpmulhrsw, one lane
  return static_cast<int16_t>((((a * b) >> 14) + 1) >> 1);
}

// p4 - kExp2Poly[0] as the int16 lanes compute it.
constexpr int16_t Exp2FracOffset16(int16_t r) {
  using softmax::kExp2Poly;
  int16_t p = static_cast<int16_t>(kExp2Poly[3] + MulHrs(kExp2Poly[4], r));
  p = static_cast<int16_t>(kExp2Poly[2] + MulHrs(p, r));
  const int16_t u = static_cast<int16_t>(kExp2Poly[1] + 32768 + MulHrs(p, r));
  return static_cast<int16_t>(MulHrs(u, r) - r);
}

constexpr bool Exp2Frac16Exact(int32_t begin, int32_t end) {
  for (int32_t r = begin; r < end; ++r) {
    if (Exp2FracOffset16(static_cast<int16_t>(r)) + softmax::kExp2Poly[0] !=
        softmax::Exp2NegFracQ16(r)) {
      return false;
    }
  }
  return true;
}
// Every r15 in [0, 2^15), in four evaluations to stay within the
// compilers' constant-evaluation step limits.
static_assert(Exp2Frac16Exact(0, 8192));
static_assert(Exp2Frac16Exact(8192, 16384));
static_assert(Exp2Frac16Exact(16384, 24576));
static_assert(Exp2Frac16Exact(24576, 32768));

// round(2^15 2^(-y/2^20)) capped at 32767 for two vectors of y, lane by
// lane; softmax::Exp2NegQ15.
inline void Exp2NegQ15x2(__m512i y0, __m512i y1, __m512i* e0, __m512i* e1) {
  using softmax::kExp2Poly;
  const __m512i mask = _mm512_set1_epi32(0x7FFF);
  const __m512i r = _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm512_cvtepi32_epi16(
          _mm512_and_si512(_mm512_srli_epi32(y0, 5), mask))),
      _mm512_cvtepi32_epi16(_mm512_and_si512(_mm512_srli_epi32(y1, 5), mask)),
      1);
  __m512i p =
      _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(kExp2Poly[3])),
                       _mm512_mulhrs_epi16(_mm512_set1_epi16(kExp2Poly[4]), r));
  p = _mm512_add_epi16(_mm512_set1_epi16(static_cast<int16_t>(kExp2Poly[2])),
                       _mm512_mulhrs_epi16(p, r));
  p = _mm512_add_epi16(
      _mm512_set1_epi16(static_cast<int16_t>(kExp2Poly[1] + 32768)),
      _mm512_mulhrs_epi16(p, r));
  p = _mm512_sub_epi16(_mm512_mulhrs_epi16(p, r), r);
  const __m512i c0 = _mm512_set1_epi32(kExp2Poly[0]);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i cap = _mm512_set1_epi32(softmax::kOneQ15);
  const __m512i y[2] = {y0, y1};
  const __m512i frac[2] = {
      _mm512_cvtepi16_epi32(_mm512_castsi512_si256(p)),
      _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(p, 1))};
  __m512i* e[2] = {e0, e1};
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i n = _mm512_srli_epi32(y[h], softmax::kExpFracBits);
    const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(frac[h], c0),
                                         _mm512_sllv_epi32(one, n));
    *e[h] =
        _mm512_min_epi32(_mm512_srlv_epi32(sum, _mm512_add_epi32(n, one)), cap);
  }
}

// softmax::Exponent for a < a_cap, and kMaxExponent at and above it; a_cap
// is chosen so that the 64-bit product shifted down still fits 32 bits.
struct VectorExp {
  __m512i multiplier;  // m2 in the low half of each 64-bit lane
  __m512i half;        // 2^(shift-1) in 64-bit lanes
  __m128i shift;
  __m512i a_cap;
  __m512i max_exponent;
};

VectorExp MakeVectorExp(const softmax::ExpParams& p) {
  const uint64_t half = uint64_t{1} << (p.shift - 1);
  const uint64_t target = uint64_t{softmax::kMaxExponent} << p.shift;
  // Smallest a with (a m2 + half) >> shift >= kMaxExponent.
  uint64_t cap = (target - half + p.multiplier - 1) / p.multiplier;
  if (cap > 0x7FFFFFFF) cap = 0x7FFFFFFF;
  return VectorExp{
      _mm512_set1_epi64(static_cast<int64_t>(p.multiplier)),
      _mm512_set1_epi64(static_cast<int64_t>(half)), _mm_cvtsi32_si128(p.shift),
      _mm512_set1_epi32(static_cast<int32_t>(cap)),
      _mm512_set1_epi32(static_cast<int32_t>(softmax::kMaxExponent))};
}

inline __m512i Exponent(__m512i a, const VectorExp& v) {
  a = _mm512_min_epi32(a, v.a_cap);
  const __m512i even = _mm512_srl_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(a, v.multiplier), v.half), v.shift);
  const __m512i odd = _mm512_srl_epi64(
      _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(a, 32), v.multiplier),
                       v.half),
      v.shift);
  const __m512i y =
      _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  return _mm512_min_epi32(y, v.max_exponent);
}

// kb[d'][j] = bytes 4d'..4d'+3 of k row j, each + 128 (as unsigned): the
// 64 x 16 dword matrix of k transposed, 16 x 16 blocks at a time.
void TransposeBiasedK(const int8_t* k, int32_t (*kb)[kN]) {
  const __m512i bias = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
  for (int jb = 0; jb < kBlocks; ++jb) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; ++i) {
      r[i] = _mm512_xor_si512(_mm512_loadu_si512(k + (16 * jb + i) * kD), bias);
    }
    for (int i = 0; i < 8; ++i) {
      t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
      t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // In every 128-bit lane L, r[4g + m] now holds column 4L + m of rows
    // 4g .. 4g+3.
    for (int g = 0; g < 4; ++g) {
      r[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
      r[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
      r[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int m = 0; m < 4; ++m) {
      const __m512i v0 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0x88);
      const __m512i v1 = _mm512_shuffle_i32x4(r[m], r[4 + m], 0xDD);
      const __m512i w0 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0x88);
      const __m512i w1 = _mm512_shuffle_i32x4(r[8 + m], r[12 + m], 0xDD);
      _mm512_store_si512(&kb[m][16 * jb], _mm512_shuffle_i32x4(v0, w0, 0x88));
      _mm512_store_si512(&kb[4 + m][16 * jb],
                         _mm512_shuffle_i32x4(v1, w1, 0x88));
      _mm512_store_si512(&kb[8 + m][16 * jb],
                         _mm512_shuffle_i32x4(v0, w0, 0xDD));
      _mm512_store_si512(&kb[12 + m][16 * jb],
                         _mm512_shuffle_i32x4(v1, w1, 0xDD));
    }
  }
}

// vp[j'][b] = int16 pairs (v[2j'][c], v[2j'+1][c]) for c = 16b .. 16b+15.
void PairV(const int8_t* v, __m512i (*vp)[kBlocks]) {
  alignas(64) int16_t lo[32], hi[32];
  for (int m = 0; m < 16; ++m) {
    lo[2 * m] = static_cast<int16_t>(m);
    lo[2 * m + 1] = static_cast<int16_t>(32 + m);
    hi[2 * m] = static_cast<int16_t>(16 + m);
    hi[2 * m + 1] = static_cast<int16_t>(48 + m);
  }
  const __m512i idx_lo = _mm512_load_si512(lo);
  const __m512i idx_hi = _mm512_load_si512(hi);
  for (int jp = 0; jp < kN / 2; ++jp) {
    for (int h = 0; h < 2; ++h) {  // columns 32h .. 32h+31
      const __m512i a = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(v + (2 * jp) * kD + 32 * h)));
      const __m512i b = _mm512_cvtepi8_epi16(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(v + (2 * jp + 1) * kD + 32 * h)));
      vp[jp][2 * h] = _mm512_permutex2var_epi16(a, idx_lo, b);
      vp[jp][2 * h + 1] = _mm512_permutex2var_epi16(a, idx_hi, b);
    }
  }
}

void AttentionTile(const int8_t* qkv, int8_t* out, ScoreScale scale) {
  const int8_t* q = qkv;
  const int8_t* k = qkv + kN * kD;
  const int8_t* v = qkv + 2 * kN * kD;
  const VectorExp vexp =
      MakeVectorExp(softmax::MakeExpParams(scale.multiplier, scale.shift));

  alignas(64) int32_t q32[kN][kQuads];  // q's byte quads as dwords
  std::memcpy(q32, q, sizeof(q32));
  alignas(64) int32_t kb[kQuads][kN];
  TransposeBiasedK(k, kb);
  alignas(64) __m512i vp[kN / 2][kBlocks];
  PairV(v, vp);
  // Probabilities of the block's rows as int16: dword j' of a row is the
  // pair (p_2j', p_2j'+1) that vpdpwssd takes.
  alignas(64) int32_t p16[kRows][kN / 2];
  // The block's exponentials, between the softmax passes.
  alignas(64) int32_t ebuf[kRows][kN];

  for (int i0 = 0; i0 < kN; i0 += kRows) {
    __m512i s[kRows][kBlocks];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) s[r][b] = _mm512_setzero_si512();
    }
#pragma GCC unroll 16
    for (int d = 0; d < kQuads; ++d) {
      __m512i kv[kBlocks];
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b)
        kv[b] = _mm512_load_si512(&kb[d][16 * b]);
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) {
        const __m512i qd = _mm512_set1_epi32(q32[i0 + r][d]);
#pragma GCC unroll 16
        for (int b = 0; b < kBlocks; ++b) {
          s[r][b] = _mm512_dpbusd_epi32(s[r][b], kv[b], qd);
        }
      }
    }
    // The softmax in three passes over the block's rows, so that one
    // row's division does not hold up the next row's exponentials.
    uint32_t sums[kRows];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const __m512i mx = _mm512_max_epi32(_mm512_max_epi32(s[r][0], s[r][1]),
                                          _mm512_max_epi32(s[r][2], s[r][3]));
      const __m512i row_max = _mm512_set1_epi32(_mm512_reduce_max_epi32(mx));
      __m512i e[kBlocks];
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; b += 2) {
        Exp2NegQ15x2(Exponent(_mm512_sub_epi32(row_max, s[r][b]), vexp),
                     Exponent(_mm512_sub_epi32(row_max, s[r][b + 1]), vexp),
                     &e[b], &e[b + 1]);
      }
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) {
        _mm512_store_si512(&ebuf[r][16 * b], e[b]);
      }
      sums[r] = static_cast<uint32_t>(_mm512_reduce_add_epi32(_mm512_add_epi32(
          _mm512_add_epi32(e[0], e[1]), _mm512_add_epi32(e[2], e[3]))));
    }
    uint32_t reciprocals[kRows];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      reciprocals[r] = softmax::Reciprocal(sums[r]);
    }
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
      const __m512i vrec =
          _mm512_set1_epi32(static_cast<int32_t>(reciprocals[r]));
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) {
        __m512i p = _mm512_srli_epi32(
            _mm512_add_epi32(
                _mm512_mullo_epi32(_mm512_load_si512(&ebuf[r][16 * b]), vrec),
                _mm512_set1_epi32(1 << 15)),
            16);
        p = _mm512_min_epu32(p, _mm512_set1_epi32(softmax::kOneQ15));
        _mm256_store_si256(reinterpret_cast<__m256i*>(&p16[r][8 * b]),
                           _mm512_cvtepi32_epi16(p));
      }
    }

    __m512i acc[kRows][kBlocks];
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_si512();
    }
#pragma GCC unroll 32
    for (int jp = 0; jp < kN / 2; ++jp) {
      __m512i vv[kBlocks];
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) vv[b] = _mm512_load_si512(&vp[jp][b]);
#pragma GCC unroll 16
      for (int r = 0; r < kRows; ++r) {
        const __m512i pair = _mm512_set1_epi32(p16[r][jp]);
#pragma GCC unroll 16
        for (int b = 0; b < kBlocks; ++b) {
          acc[r][b] = _mm512_dpwssd_epi32(acc[r][b], pair, vv[b]);
        }
      }
    }
    const __m512i half = _mm512_set1_epi32(1 << 14);
#pragma GCC unroll 16
    for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) {
        // RoundShift32(acc, 15) then Saturate8 (vpmovsdb saturates).
        const __m512i o =
            _mm512_srai_epi32(_mm512_add_epi32(acc[r][b], half), 15);
        _mm_storeu_si128(
            reinterpret_cast<__m128i*>(out + (i0 + r) * kD + 16 * b),
            _mm512_cvtsepi32_epi8(o));
      }
    }
  }
}

}  // namespace

void AttentionTilesAvx512(const int8_t* qkv, int8_t* out, size_t n,
                          const ScoreScale* scales) {
  for (size_t i = 0; i < n; ++i) {
    AttentionTile(qkv + i * kAttentionInBytes, out + i * kAttentionOutBytes,
                  scales[i]);
  }
}

}  // namespace npuk::cpu

#else  // not x86 with AVX-512 VNNI: HasAvx512Vnni() is false, never chosen.

namespace npuk::cpu {

void AttentionTilesAvx512(const int8_t* qkv, int8_t* out, size_t n,
                          const ScoreScale* scales) {
  AttentionTilesPortable(qkv, out, n, scales);
}

}  // namespace npuk::cpu

#endif
