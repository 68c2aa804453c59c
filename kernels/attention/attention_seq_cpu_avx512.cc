// The sequence attention's CPU path with AVX-512 VNNI, and the
// attention_stream kernel's: the tile loop of attention_seq_impl.inc (the
// same source as the portable reference) with four query rows at a time
// against a key tile, by the products of the tile kernel's AVX-512 path
// (attention_cpu_avx512.cc, attention_avx512_parts.h):
//  - scores with vpdpbusd, k + 128 the unsigned operand: a lane holds
//    s'_ij = s_ij + c_i with c_i = 128 sum_d q_id. The max and the
//    exponentials only use differences within a row, which are exact; the
//    row's m_t is reported as max_j s'_ij - c_i, the exact max of s_ij.
//  - the keys a row does not see (limit) masked out of the max and the
//    sum: their exponentials are 0, so their probabilities are 0.
//  - p.v with vpdpwssd on int16 pairs, the mix with 32x32 -> 64 products.
// All exact integer sums, every rounding the formula lane by lane, so the
// bytes are the reference's. Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni on x86 only; called after HasAvx512Vnni().
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/attention/attention_seq.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/softmax.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__)
#include "kernels/attention/attention_avx512_parts.h"

namespace npuk {
namespace seq::avx512 {

using cpu::avx512::kBlocks;
using cpu::avx512::kQuads;

inline constexpr int kSeqT = cpu::avx512::kN;  // tokens per tile
inline constexpr int kSeqD = cpu::avx512::kD;  // dims per token
inline constexpr int kSeqBlockRows = cpu::avx512::kBlockRows;

// kb[d'][j]: bytes 4d' .. 4d'+3 of k row j, each + 128 (unsigned);
// vp[j'][b]: int16 pairs (v[2j'][c], v[2j'+1][c]), c = 16b .. 16b+15.
struct PreparedTile {
  alignas(64) int32_t kb[kQuads][kSeqT];
  __m512i vp[kSeqT / 2][kBlocks];
};

void PrepareTile(const int8_t* k, const int8_t* v, int keys, PreparedTile* t) {
  if (keys == kSeqT) {
    cpu::avx512::TransposeBiasedK(k, t->kb);
    cpu::avx512::PairV(v, t->vp);
    return;
  }
  // The last key tile of a head: only `keys` rows exist.
  alignas(64) int8_t kpad[kSeqT * kSeqD] = {};
  alignas(64) int8_t vpad[kSeqT * kSeqD] = {};
  std::memcpy(kpad, k, static_cast<size_t>(keys) * kSeqD);
  std::memcpy(vpad, v, static_cast<size_t>(keys) * kSeqD);
  cpu::avx512::TransposeBiasedK(kpad, t->kb);
  cpu::avx512::PairV(vpad, t->vp);
}

// The exponent constants of the last score scale this thread saw (a
// request has one; MakeVectorExp divides).
const cpu::avx512::VectorExp& VectorExpFor(const softmax::ExpParams& params) {
  thread_local softmax::ExpParams last{0, 0};
  thread_local cpu::avx512::VectorExp vexp;
  if (params.multiplier != last.multiplier || params.shift != last.shift) {
    vexp = cpu::avx512::MakeVectorExp(params);
    last = params;
  }
  return vexp;
}

// The lanes j = 16 b .. 16 b + 15 with j < lim.
inline __mmask16 VisibleLanes(int lim, int b) {
  const int n = lim - 16 * b;
  if (n >= 16) return 0xFFFF;
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1);
}

void BlockPartials(const int8_t* q, int n, const PreparedTile& tile,
                   const int32_t* limit, const softmax::ExpParams& params,
                   int32_t* row_max, uint32_t* sum, int32_t* o, int o_stride) {
  const cpu::avx512::VectorExp& vexp = VectorExpFor(params);
  alignas(64) int32_t q32[kSeqBlockRows][kQuads] = {};
  std::memcpy(q32, q, static_cast<size_t>(n) * kSeqD);

  __m512i s[kSeqBlockRows][kBlocks];
  cpu::avx512::BlockScores(q32, tile.kb, s);

  // Per row: the max over the visible keys, the exponentials (0 where not
  // visible), their sum. Rows beyond n or with limit 0 get p = 0.
  alignas(64) int32_t ebuf[kSeqBlockRows][kSeqT];
  int32_t shifted_max[kSeqBlockRows] = {};
  uint32_t sums[kSeqBlockRows] = {};
  const __m512i lowest = _mm512_set1_epi32(INT32_MIN);
#pragma GCC unroll 16
  for (int r = 0; r < kSeqBlockRows; ++r) {
    const int lim = r < n ? limit[r] : 0;
    __mmask16 mk[kBlocks];
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) mk[b] = VisibleLanes(lim, b);
    __m512i mx = lowest;
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) {
      mx = _mm512_mask_max_epi32(mx, mk[b], mx, s[r][b]);
    }
    shifted_max[r] = _mm512_reduce_max_epi32(mx);
    const __m512i vmax = _mm512_set1_epi32(shifted_max[r]);
    __m512i e[kBlocks];
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; b += 2) {
      cpu::avx512::Exp2NegQ15x2(
          cpu::avx512::Exponent(_mm512_maskz_sub_epi32(mk[b], vmax, s[r][b]),
                                vexp),
          cpu::avx512::Exponent(
              _mm512_maskz_sub_epi32(mk[b + 1], vmax, s[r][b + 1]), vexp),
          &e[b], &e[b + 1]);
    }
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) {
      e[b] = _mm512_maskz_mov_epi32(mk[b], e[b]);
      _mm512_store_si512(&ebuf[r][16 * b], e[b]);
    }
    sums[r] = static_cast<uint32_t>(_mm512_reduce_add_epi32(_mm512_add_epi32(
        _mm512_add_epi32(e[0], e[1]), _mm512_add_epi32(e[2], e[3]))));
  }
  // A row that sees a key has sum >= 32767 (its max key's e); the others
  // have sum 0 and all-zero exponentials, and reciprocal 0 keeps p at 0.
  uint32_t reciprocals[kSeqBlockRows];
#pragma GCC unroll 16
  for (int r = 0; r < kSeqBlockRows; ++r) {
    reciprocals[r] = sums[r] != 0 ? softmax::Reciprocal(sums[r]) : 0;
  }
  alignas(64) int32_t p16[kSeqBlockRows][kSeqT / 2];
  cpu::avx512::BlockProbabilities(ebuf, reciprocals, p16);
  __m512i acc[kSeqBlockRows][kBlocks];
  cpu::avx512::BlockValues(p16, tile.vp, acc);

  // c_r = 128 sum_d q_rd: vpdpbusd of 128 (unsigned) with the row's bytes.
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
#pragma GCC unroll 16
  for (int r = 0; r < kSeqBlockRows; ++r) {
    if (r >= n || limit[r] == 0) continue;
    const __m512i row = _mm512_load_si512(q32[r]);
    const int32_t c = _mm512_reduce_add_epi32(
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), bias, row));
    row_max[r] = shifted_max[r] - c;
    sum[r] = sums[r];
#pragma GCC unroll 16
    for (int b = 0; b < kBlocks; ++b) {
      _mm512_storeu_si512(o + r * o_stride + 16 * b, acc[r][b]);
    }
  }
}

// A head's packed key and value tiles, per thread, reused by the head's
// query tiles (up to 64 x 12 KB).
PreparedTile* HeadCache(int32_t tiles) {
  thread_local std::vector<PreparedTile> cache;
  if (cache.size() < static_cast<size_t>(tiles)) cache.resize(tiles);
  return cache.data();
}

// online::MixValue on 16 lanes, as attention_seq_cpu_avx2.cc's MixRow:
// the signed 32x32 -> 64 products and their sum fit, and a logical 64-bit
// shift keeps the right low word.
void MixRow(int32_t* acc, const int32_t* o, const online::Mix& mix) {
  const __m512i alpha = _mm512_set1_epi64(mix.alpha);
  const __m512i beta = _mm512_set1_epi64(mix.beta);
  const __m512i round =
      _mm512_set1_epi64(int64_t{1} << (online::kWeightBits - 1));
#pragma GCC unroll 4
  for (int b = 0; b < kSeqD / 16; ++b) {
    const __m512i x = _mm512_loadu_si512(acc + 16 * b);
    const __m512i y = _mm512_loadu_si512(o + 16 * b);
    const __m512i even = _mm512_srli_epi64(
        _mm512_add_epi64(_mm512_add_epi64(_mm512_mul_epi32(alpha, x),
                                          _mm512_mul_epi32(beta, y)),
                         round),
        online::kWeightBits);
    const __m512i odd = _mm512_srli_epi64(
        _mm512_add_epi64(
            _mm512_add_epi64(_mm512_mul_epi32(alpha, _mm512_srli_epi64(x, 32)),
                             _mm512_mul_epi32(beta, _mm512_srli_epi64(y, 32))),
            round),
        online::kWeightBits);
    _mm512_storeu_si512(
        acc + 16 * b,
        _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32)));
  }
}

// online::OutputValue on 16 lanes: o m (|o|, m < 2^31) in 64-bit lanes,
// rounded, arithmetic shift by 46 - sh in [29, 61], clamped to int8.
void OutputRow(const int32_t* acc, online::OutputScale scale, int8_t* out) {
  const int32_t m = std::max(scale.multiplier, int32_t{1} << 30);
  const int32_t sh =
      std::clamp(scale.shift, online::kMinOutputShift, online::kMaxOutputShift);
  const int s = 46 - sh;
  const __m512i vm = _mm512_set1_epi64(m);
  const __m512i round = _mm512_set1_epi64(int64_t{1} << (s - 1));
  const __m128i count = _mm_cvtsi32_si128(s);
  const __m512i lo = _mm512_set1_epi64(-128);
  const __m512i hi = _mm512_set1_epi64(127);
  auto lanes = [&](__m512i x) {  // the low dword of each 64-bit lane
    const __m512i r = _mm512_sra_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(x, vm), round), count);
    return _mm512_min_epi64(_mm512_max_epi64(r, lo), hi);
  };
#pragma GCC unroll 4
  for (int b = 0; b < kSeqD / 16; ++b) {
    const __m512i x = _mm512_loadu_si512(acc + 16 * b);
    const __m512i even = lanes(x);
    const __m512i odd = lanes(_mm512_srli_epi64(x, 32));
    const __m512i words =
        _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * b),
                     _mm512_cvtepi32_epi8(words));
  }
}

#include "kernels/attention/attention_seq_impl.inc"
}  // namespace seq::avx512

namespace cpu {

void AttentionSeqAvx512(const SeqAttentionArgs& args, size_t first,
                        size_t count) {
  seq::avx512::RunUnits(args, first, count);
}

void AttentionStreamUnitAvx512(const StreamUnitArgs& unit) {
  seq::avx512::StreamUnit(unit);
}

}  // namespace cpu
}  // namespace npuk

#else  // not x86 with AVX-512 VNNI: HasAvx512Vnni() is false, never chosen.
#include "kernels/attention/attention_seq_portable.h"

namespace npuk::cpu {

void AttentionSeqAvx512(const SeqAttentionArgs& args, size_t first,
                        size_t count) {
  seq::AttentionSeqReference(args, first, count);
}

void AttentionStreamUnitAvx512(const StreamUnitArgs& unit) {
  seq::portable::StreamUnit(unit);
}

}  // namespace npuk::cpu

#endif
