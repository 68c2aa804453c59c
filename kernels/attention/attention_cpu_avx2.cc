// The AVX2 path of the attention kernel's CPU backend (compiled with -mavx2
// -mfma on x86 only; called after a run-time CPU check). Never compiled
// for the AIE cores: intrinsics live only in *_cpu_avx2.cc files.
//
// Bit-exactness with the kernel entries comes from two rules:
//  - Parts that are exact integer arithmetic (the mel DFT sums, q.k scores,
//    sums of exponentials, p.v sums) may be reordered, folded and vectorised
//    freely: they give the same integers in any order.
//  - Every rounding step (windowing, the 2^-y exponential, probabilities,
//    the final shift) is the formula of kernels/common, applied lane by lane
//    with the same operand widths, or the scalar helper itself.
#include <cstdint>
#include <cstring>

#include "kernels/attention/attention_cpu.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/common/softmax.h"

#if defined(__x86_64__) && defined(__AVX2__)
#include <immintrin.h>

namespace npuk::cpu {
namespace {

// ----------------------------------------------------------- attention ----

constexpr int kN = static_cast<int>(kAttentionTokens);
constexpr int kD = static_cast<int>(kAttentionDims);

// Sums the 8 int32 lanes of each of v[0..7] into lane i of the result.
__m256i HorizontalSums8(const __m256i* v) {
  const __m256i s01 = _mm256_hadd_epi32(v[0], v[1]);
  const __m256i s23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i s45 = _mm256_hadd_epi32(v[4], v[5]);
  const __m256i s67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i s0123 = _mm256_hadd_epi32(s01, s23);
  const __m256i s4567 = _mm256_hadd_epi32(s45, s67);
  // s0123 = [0 1 2 3 | 0 1 2 3] halves, s4567 likewise.
  const __m256i lo = _mm256_permute2x128_si256(s0123, s4567, 0x20);
  const __m256i hi = _mm256_permute2x128_si256(s0123, s4567, 0x31);
  return _mm256_add_epi32(lo, hi);
}

int32_t HorizontalSum32(__m256i v) {
  __m128i s =
      _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

int32_t HorizontalMax32(__m256i v) {
  __m128i s =
      _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_max_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_max_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

// round(2^15 2^(-y/2^20)) capped at 32767, lane by lane; softmax::Exp2NegQ15.
__m256i Exp2NegQ15(__m256i y) {
  const __m256i r15 =
      _mm256_and_si256(_mm256_srli_epi32(y, 5), _mm256_set1_epi32(0x7FFF));
  const __m256i half = _mm256_set1_epi32(1 << 14);
  __m256i p = _mm256_set1_epi32(softmax::kExp2Poly[4]);
  for (int i = 3; i >= 0; --i) {
    p = _mm256_add_epi32(
        _mm256_set1_epi32(softmax::kExp2Poly[i]),
        _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(p, r15), half),
                          15));
  }
  const __m256i n = _mm256_srli_epi32(y, softmax::kExpFracBits);
  const __m256i round = _mm256_sllv_epi32(_mm256_set1_epi32(1), n);
  const __m256i e = _mm256_srlv_epi32(
      _mm256_add_epi32(p, round), _mm256_add_epi32(n, _mm256_set1_epi32(1)));
  return _mm256_min_epi32(e, _mm256_set1_epi32(softmax::kOneQ15));
}

// softmax::Exponent for a < a_cap, and kMaxExponent at and above it; a_cap
// is chosen so that the 64-bit product shifted down still fits 32 bits.
struct VectorExp {
  __m256i multiplier;  // m2 in the low half of each 64-bit lane
  __m256i half;        // 2^(shift-1) in 64-bit lanes
  __m128i shift;
  __m256i a_cap;
  __m256i max_exponent;
};

VectorExp MakeVectorExp(const softmax::ExpParams& p) {
  const uint64_t half = uint64_t{1} << (p.shift - 1);
  const uint64_t target = uint64_t{softmax::kMaxExponent} << p.shift;
  // Smallest a with (a m2 + half) >> shift >= kMaxExponent.
  uint64_t cap = (target - half + p.multiplier - 1) / p.multiplier;
  if (cap > 0x7FFFFFFF) cap = 0x7FFFFFFF;
  return VectorExp{
      _mm256_set1_epi64x(static_cast<int64_t>(p.multiplier)),
      _mm256_set1_epi64x(static_cast<int64_t>(half)),
      _mm_cvtsi32_si128(p.shift), _mm256_set1_epi32(static_cast<int32_t>(cap)),
      _mm256_set1_epi32(static_cast<int32_t>(softmax::kMaxExponent))};
}

__m256i Exponent(__m256i a, const VectorExp& v) {
  a = _mm256_min_epi32(a, v.a_cap);
  const __m256i even = _mm256_srl_epi64(
      _mm256_add_epi64(_mm256_mul_epu32(a, v.multiplier), v.half), v.shift);
  const __m256i odd = _mm256_srl_epi64(
      _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), v.multiplier),
                       v.half),
      v.shift);
  const __m256i y = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  return _mm256_min_epi32(y, v.max_exponent);
}

void AttentionTile(const int8_t* qkv, int8_t* out, ScoreScale scale) {
  const int8_t* q = qkv;
  const int8_t* k = qkv + kN * kD;
  const int8_t* v = qkv + 2 * kN * kD;
  const softmax::ExpParams params =
      softmax::MakeExpParams(scale.multiplier, scale.shift);
  const VectorExp vexp = MakeVectorExp(params);

  // Rows of q and k widened to int16: 4 vectors of 16 per row.
  alignas(32) __m256i q16[kN][4];
  alignas(32) __m256i k16[kN][4];
  for (int r = 0; r < kN; ++r) {
    for (int c = 0; c < 4; ++c) {
      q16[r][c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(q + r * kD + 16 * c)));
      k16[r][c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(k + r * kD + 16 * c)));
    }
  }
  // v as int16 pairs (v[2j'][c], v[2j'+1][c]) for _mm256_madd_epi16. Per
  // 16 columns, unpacklo holds c = 0-3, 8-11 and unpackhi c = 4-7, 12-15;
  // _mm256_packs_epi32 at the end undoes exactly that interleave.
  alignas(32) __m256i vp[kN / 2][8];
  for (int jp = 0; jp < kN / 2; ++jp) {
    for (int c = 0; c < 4; ++c) {
      const __m256i a = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(v + (2 * jp) * kD + 16 * c)));
      const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(v + (2 * jp + 1) * kD + 16 * c)));
      vp[jp][2 * c] = _mm256_unpacklo_epi16(a, b);
      vp[jp][2 * c + 1] = _mm256_unpackhi_epi16(a, b);
    }
  }

  for (int i = 0; i < kN; ++i) {
    // Scores: 8 vectors of 8 int32, exact.
    __m256i score[kN / 8];
    for (int jb = 0; jb < kN / 8; ++jb) {
      __m256i partial[8];
      for (int jj = 0; jj < 8; ++jj) {
        const int j = 8 * jb + jj;
        __m256i acc = _mm256_madd_epi16(q16[i][0], k16[j][0]);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][1], k16[j][1]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][2], k16[j][2]));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(q16[i][3], k16[j][3]));
        partial[jj] = acc;
      }
      score[jb] = HorizontalSums8(partial);
    }
    __m256i vmax = score[0];
    for (int jb = 1; jb < kN / 8; ++jb)
      vmax = _mm256_max_epi32(vmax, score[jb]);
    const __m256i row_max = _mm256_set1_epi32(HorizontalMax32(vmax));

    __m256i e[kN / 8];
    __m256i esum = _mm256_setzero_si256();
    for (int jb = 0; jb < kN / 8; ++jb) {
      e[jb] = Exp2NegQ15(Exponent(_mm256_sub_epi32(row_max, score[jb]), vexp));
      esum = _mm256_add_epi32(esum, e[jb]);
    }
    const uint32_t reciprocal =
        softmax::Reciprocal(static_cast<uint32_t>(HorizontalSum32(esum)));
    const __m256i vrec = _mm256_set1_epi32(static_cast<int32_t>(reciprocal));
    alignas(32) int32_t p[kN];
    for (int jb = 0; jb < kN / 8; ++jb) {
      __m256i pj =
          _mm256_srli_epi32(_mm256_add_epi32(_mm256_mullo_epi32(e[jb], vrec),
                                             _mm256_set1_epi32(1 << 15)),
                            16);
      pj = _mm256_min_epi32(pj, _mm256_set1_epi32(softmax::kOneQ15));
      _mm256_store_si256(reinterpret_cast<__m256i*>(p + 8 * jb), pj);
    }

    __m256i acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_si256();
    for (int jp = 0; jp < kN / 2; ++jp) {
      const __m256i pair = _mm256_set1_epi32(
          static_cast<int32_t>((static_cast<uint32_t>(p[2 * jp]) & 0xFFFF) |
                               (static_cast<uint32_t>(p[2 * jp + 1]) << 16)));
      for (int c = 0; c < 8; ++c) {
        acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(pair, vp[jp][c]));
      }
    }
    const __m256i half = _mm256_set1_epi32(1 << 14);
    __m256i packed16[4];
    for (int c = 0; c < 4; ++c) {
      const __m256i lo =
          _mm256_srai_epi32(_mm256_add_epi32(acc[2 * c], half), 15);
      const __m256i hi =
          _mm256_srai_epi32(_mm256_add_epi32(acc[2 * c + 1], half), 15);
      packed16[c] = _mm256_packs_epi32(lo, hi);  // columns 16c .. 16c+15
    }
    for (int c = 0; c < 2; ++c) {
      // packs_epi16 interleaves 128-bit halves; permute restores order.
      const __m256i bytes = _mm256_permute4x64_epi64(
          _mm256_packs_epi16(packed16[2 * c], packed16[2 * c + 1]), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i * kD + 32 * c),
                          bytes);
    }
  }
}

}  // namespace

void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales) {
  for (size_t i = 0; i < n; ++i) {
    AttentionTile(qkv + i * kAttentionInBytes, out + i * kAttentionOutBytes,
                  scales[i]);
  }
}

}  // namespace npuk::cpu

#else  // not x86 with AVX2: HasAvx2() is false and these are never chosen.

namespace npuk::cpu {

void AttentionTilesAvx2(const int8_t* qkv, int8_t* out, size_t n,
                        const ScoreScale* scales) {
  AttentionTilesPortable(qkv, out, n, scales);
}

}  // namespace npuk::cpu

#endif
