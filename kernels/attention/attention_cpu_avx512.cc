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
#include "kernels/attention/attention_avx512_parts.h"

namespace npuk::cpu {
namespace {

using avx512::kBlocks;
using avx512::kD;
using avx512::kN;
using avx512::kQuads;
static_assert(kN == kAttentionTokens && kD == kAttentionDims);
constexpr int kRows = avx512::kBlockRows;  // 16 sums in registers

void AttentionTile(const int8_t* qkv, int8_t* out, ScoreScale scale) {
  const int8_t* q = qkv;
  const int8_t* k = qkv + kN * kD;
  const int8_t* v = qkv + 2 * kN * kD;
  const avx512::VectorExp vexp = avx512::MakeVectorExp(
      softmax::MakeExpParams(scale.multiplier, scale.shift));

  alignas(64) int32_t q32[kN][kQuads];  // q's byte quads as dwords
  std::memcpy(q32, q, sizeof(q32));
  alignas(64) int32_t kb[kQuads][kN];
  avx512::TransposeBiasedK(k, kb);
  alignas(64) __m512i vp[kN / 2][kBlocks];
  avx512::PairV(v, vp);
  // Probabilities of the block's rows as int16: dword j' of a row is the
  // pair (p_2j', p_2j'+1) that vpdpwssd takes.
  alignas(64) int32_t p16[kRows][kN / 2];
  // The block's exponentials, between the softmax passes.
  alignas(64) int32_t ebuf[kRows][kN];

  for (int i0 = 0; i0 < kN; i0 += kRows) {
    __m512i s[kRows][kBlocks];
    avx512::BlockScores(&q32[i0], kb, s);
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
        avx512::Exp2NegQ15x2(
            avx512::Exponent(_mm512_sub_epi32(row_max, s[r][b]), vexp),
            avx512::Exponent(_mm512_sub_epi32(row_max, s[r][b + 1]), vexp),
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
    avx512::BlockProbabilities(ebuf, reciprocals, p16);

    __m512i acc[kRows][kBlocks];
    avx512::BlockValues(p16, vp, acc);
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
