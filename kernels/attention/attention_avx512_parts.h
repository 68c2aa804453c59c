// The AVX-512 VNNI pieces shared by the attention tile kernel's CPU path
// (attention_cpu_avx512.cc) and the sequence attention's
// (attention_seq_cpu_avx512.cc): the exponential of kernels/common/
// softmax.h on 16 and 32 lanes, the biased and transposed key layout for
// vpdpbusd and the int16 value pairs for vpdpwssd. Include only from files
// built with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (x86 only), and
// call only after HasAvx512Vnni().
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_AVX512_PARTS_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_AVX512_PARTS_H_

#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VNNI__)
#error "attention_avx512_parts.h needs -mavx512f -mavx512bw -mavx512vnni"
#endif

// GCC 12's AVX-512 header warnings (bug 105593) are turned off for the
// includers in CMakeLists.txt.
#include <immintrin.h>

#include <cstdint>

#include "kernels/common/softmax.h"

namespace npuk::cpu::avx512 {

inline constexpr int kN = 64;            // tokens per tile
inline constexpr int kD = 64;            // dims per token
inline constexpr int kQuads = kD / 4;    // int8 quads per row: 16
inline constexpr int kBlocks = kN / 16;  // 16-lane vectors per row: 4

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

inline VectorExp MakeVectorExp(const softmax::ExpParams& p) {
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
inline void TransposeBiasedK(const int8_t* k, int32_t (*kb)[kN]) {
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
inline void PairV(const int8_t* v, __m512i (*vp)[kBlocks]) {
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

// Rows per block of the products below: 16 score (or value) registers.
inline constexpr int kBlockRows = 4;

// The block loops of the tile kernel and the sequence path, always inlined
// so their register arrays stay in registers (with a call or without the
// unroll pragmas GCC 12 keeps them in memory, about 2.5x slower).
#define NPUK_AVX512_INLINE inline __attribute__((always_inline))

// s[r][b], lane l = q row r . (k row 16 b + l, + 128) over the 16 byte
// quads: vpdpbusd with the biased keys unsigned (kb: TransposeBiasedK).
NPUK_AVX512_INLINE void BlockScores(const int32_t (*q32)[kQuads],
                                    const int32_t (*kb)[kN],
                                    __m512i (&s)[kBlockRows][kBlocks]) {
#pragma GCC unroll 16
  for (int r = 0; r < kBlockRows; ++r) {
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) s[r][b] = _mm512_setzero_si512();
  }
#pragma GCC unroll 16
  for (int d = 0; d < kQuads; ++d) {
    __m512i kv[kBlocks];
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) kv[b] = _mm512_load_si512(&kb[d][16 * b]);
#pragma GCC unroll 16
    for (int r = 0; r < kBlockRows; ++r) {
      const __m512i qd = _mm512_set1_epi32(q32[r][d]);
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) {
        s[r][b] = _mm512_dpbusd_epi32(s[r][b], kv[b], qd);
      }
    }
  }
}

// softmax::Probability of every e of the block's rows as int16 pairs:
// dword j' of p16[r] is (p_2j', p_2j'+1), what vpdpwssd takes. e * R <=
// 2^31 fits the 32-bit product.
NPUK_AVX512_INLINE void BlockProbabilities(const int32_t (*e)[kN],
                                           const uint32_t* reciprocals,
                                           int32_t (*p16)[kN / 2]) {
#pragma GCC unroll 16
  for (int r = 0; r < kBlockRows; ++r) {
    const __m512i vrec =
        _mm512_set1_epi32(static_cast<int32_t>(reciprocals[r]));
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) {
      __m512i p = _mm512_srli_epi32(
          _mm512_add_epi32(
              _mm512_mullo_epi32(_mm512_load_si512(&e[r][16 * b]), vrec),
              _mm512_set1_epi32(1 << 15)),
          16);
      p = _mm512_min_epu32(p, _mm512_set1_epi32(softmax::kOneQ15));
      _mm256_store_si256(reinterpret_cast<__m256i*>(&p16[r][8 * b]),
                         _mm512_cvtepi32_epi16(p));
    }
  }
}

// acc[r][b] = columns 16 b .. 16 b + 15 of sum_j p_rj v_j, exact int32
// (|sum| <= 64 * 32767 * 128 < 2^31): vpdpwssd on the pairs (vp: PairV).
NPUK_AVX512_INLINE void BlockValues(const int32_t (*p16)[kN / 2],
                                    const __m512i (*vp)[kBlocks],
                                    __m512i (&acc)[kBlockRows][kBlocks]) {
#pragma GCC unroll 16
  for (int r = 0; r < kBlockRows; ++r) {
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_si512();
  }
#pragma GCC unroll 32
  for (int jp = 0; jp < kN / 2; ++jp) {
    __m512i vv[kBlocks];
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) vv[b] = _mm512_load_si512(&vp[jp][b]);
#pragma GCC unroll 16
    for (int r = 0; r < kBlockRows; ++r) {
      const __m512i pair = _mm512_set1_epi32(p16[r][jp]);
#pragma GCC unroll 16
      for (int b = 0; b < kBlocks; ++b) {
        acc[r][b] = _mm512_dpwssd_epi32(acc[r][b], pair, vv[b]);
      }
    }
  }
}

#undef NPUK_AVX512_INLINE

}  // namespace npuk::cpu::avx512

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_AVX512_PARTS_H_
