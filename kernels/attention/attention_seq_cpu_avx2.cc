// The sequence attention's CPU path with AVX2, and the attention_stream
// kernel's: the tile loop of attention_seq_impl.inc (the same source as the
// portable reference) with the two 64x64x64 integer products done by
// vpmaddwd on int16 pairs. The sums are exact int32, so the bytes are the
// reference's. Called only after HasAvx2().
#include <immintrin.h>

#include <vector>

#include "kernels/attention/attention_seq.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/softmax.h"

namespace npuk {
namespace seq::avx2 {

inline constexpr int kSeqT = 64;  // tokens per tile
inline constexpr int kSeqD = 64;  // dims per token

// kp[d/2][j] = k[j][d] | k[j][d+1] << 16 (int16 pairs), likewise
// vp[j/2][c] = v[j][c] | v[j+1][c] << 16: a broadcast pair of q (or p)
// times 8 consecutive j (or c) is one vpmaddwd.
struct PreparedTile {
  alignas(32) int32_t kp[kSeqD / 2][kSeqT];
  alignas(32) int32_t vp[kSeqT / 2][kSeqD];
};

inline int32_t Pair(int8_t lo, int8_t hi) {
  return static_cast<int32_t>(
      static_cast<uint16_t>(int16_t{lo}) |
      (static_cast<uint32_t>(static_cast<uint16_t>(int16_t{hi})) << 16));
}

void PrepareTile(const int8_t* k, const int8_t* v, int keys, PreparedTile* t) {
  auto at = [keys](const int8_t* x, int j, int d) {
    return j < keys ? x[j * kSeqD + d] : int8_t{0};
  };
  for (int dp = 0; dp < kSeqD / 2; ++dp) {
    for (int j = 0; j < kSeqT; ++j) {
      t->kp[dp][j] = Pair(at(k, j, 2 * dp), at(k, j, 2 * dp + 1));
    }
  }
  for (int jp = 0; jp < kSeqT / 2; ++jp) {
    for (int c = 0; c < kSeqD; ++c) {
      t->vp[jp][c] = Pair(at(v, 2 * jp, c), at(v, 2 * jp + 1, c));
    }
  }
}

// out[0..63] = sum_i pairs(a[2i], a[2i+1]) . m[i][0..63] over 32 pairs.
inline void MaddRows(const int32_t* a_pairs, const int32_t (*m)[64],
                     int32_t* out) {
  __m256i acc[8];
  for (int b = 0; b < 8; ++b) acc[b] = _mm256_setzero_si256();
  for (int i = 0; i < 32; ++i) {
    const __m256i a = _mm256_set1_epi32(a_pairs[i]);
    for (int b = 0; b < 8; ++b) {
      const __m256i x =
          _mm256_load_si256(reinterpret_cast<const __m256i*>(&m[i][8 * b]));
      acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(a, x));
    }
  }
  for (int b = 0; b < 8; ++b) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8 * b), acc[b]);
  }
}

void RowScores(const int8_t* q, const PreparedTile& t, int32_t* score) {
  int32_t pairs[kSeqD / 2];
  for (int i = 0; i < kSeqD / 2; ++i) pairs[i] = Pair(q[2 * i], q[2 * i + 1]);
  MaddRows(pairs, t.kp, score);
}

void RowValues(const int32_t* p, const PreparedTile& t, int32_t* o) {
  int32_t pairs[kSeqT / 2];
  for (int i = 0; i < kSeqT / 2; ++i) {
    // p <= 32767: each fits an int16.
    pairs[i] =
        static_cast<int32_t>(static_cast<uint32_t>(p[2 * i]) |
                             (static_cast<uint32_t>(p[2 * i + 1]) << 16));
  }
  MaddRows(pairs, t.vp, o);
}

// softmax::Exponent then softmax::Exp2NegQ15 on 8 lanes; j >= lim gives 0.
uint32_t RowExp(const int32_t* score, int lim, int32_t row_max,
                const softmax::ExpParams& params, int32_t* e) {
  const __m256i vmax = _mm256_set1_epi32(row_max);
  const __m256i mult = _mm256_set1_epi64x(params.multiplier);
  const __m256i round = _mm256_set1_epi64x(int64_t{1} << (params.shift - 1));
  const __m128i shift = _mm_cvtsi32_si128(params.shift);
  const __m256i cap =
      _mm256_set1_epi32(static_cast<int32_t>(softmax::kMaxExponent));
  const __m256i frac_mask = _mm256_set1_epi32(0x7FFF);
  const __m256i half = _mm256_set1_epi32(1 << 14);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i top = _mm256_set1_epi32(softmax::kOneQ15);
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i vlim = _mm256_set1_epi32(lim);
  __m256i total = _mm256_setzero_si256();
  for (int b = 0; b < kSeqT / 8; ++b) {
    const __m256i sc =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(score + 8 * b));
    const __m256i a = _mm256_sub_epi32(vmax, sc);  // in [0, 2^21) when seen
    // 64-bit products of the even and odd lanes, rounded and shifted.
    const __m256i even = _mm256_srl_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(a, mult), round), shift);
    const __m256i odd = _mm256_srl_epi64(
        _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), mult),
                         round),
        shift);
    // Cap each 64-bit y at kMaxExponent, then pack the low words back.
    const __m256i cap64 = _mm256_set1_epi64x(softmax::kMaxExponent);
    const __m256i even_c =
        _mm256_blendv_epi8(even, cap64, _mm256_cmpgt_epi64(even, cap64));
    const __m256i odd_c =
        _mm256_blendv_epi8(odd, cap64, _mm256_cmpgt_epi64(odd, cap64));
    __m256i y = _mm256_or_si256(even_c, _mm256_slli_epi64(odd_c, 32));
    y = _mm256_min_epu32(y, cap);
    const __m256i n = _mm256_srli_epi32(y, softmax::kExpFracBits);
    const __m256i r15 = _mm256_and_si256(_mm256_srli_epi32(y, 5), frac_mask);
    __m256i p = _mm256_set1_epi32(softmax::kExp2Poly[4]);
    for (int i = 3; i >= 0; --i) {
      p = _mm256_add_epi32(
          _mm256_set1_epi32(softmax::kExp2Poly[i]),
          _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(p, r15), half),
                            15));
    }
    __m256i ev =
        _mm256_srav_epi32(_mm256_add_epi32(p, _mm256_sllv_epi32(one, n)),
                          _mm256_add_epi32(n, one));
    ev = _mm256_min_epi32(ev, top);
    const __m256i seen = _mm256_cmpgt_epi32(
        vlim, _mm256_add_epi32(lanes, _mm256_set1_epi32(8 * b)));
    ev = _mm256_and_si256(ev, seen);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(e + 8 * b), ev);
    total = _mm256_add_epi32(total, ev);
  }
  alignas(32) uint32_t parts[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(parts), total);
  uint32_t sum = 0;
  for (uint32_t x : parts) sum += x;
  return sum;
}

// A head's packed key and value tiles, per thread, reused by the head's
// query tiles (up to 64 x 16 KB).
PreparedTile* HeadCache(int32_t tiles) {
  thread_local std::vector<PreparedTile> cache;
  if (cache.size() < static_cast<size_t>(tiles)) cache.resize(tiles);
  return cache.data();
}

// online::MixValue on 8 lanes: alpha, beta <= 2^30 and |acc|, |o| < 2^23,
// so the signed 32x32 -> 64 products and their sum fit; a logical 64-bit
// shift keeps the right low word even for negative sums (the result fits
// int32, and 2^64 / 2^30 is a multiple of 2^32).
void MixRow(int32_t* acc, const int32_t* o, const online::Mix& mix) {
  const __m256i alpha = _mm256_set1_epi64x(mix.alpha);
  const __m256i beta = _mm256_set1_epi64x(mix.beta);
  const __m256i round =
      _mm256_set1_epi64x(int64_t{1} << (online::kWeightBits - 1));
  const __m256i low = _mm256_set1_epi64x(0xFFFFFFFF);
  for (int b = 0; b < kSeqD / 8; ++b) {
    const __m256i x =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 8 * b));
    const __m256i y =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o + 8 * b));
    const __m256i even = _mm256_srli_epi64(
        _mm256_add_epi64(_mm256_add_epi64(_mm256_mul_epi32(alpha, x),
                                          _mm256_mul_epi32(beta, y)),
                         round),
        online::kWeightBits);
    const __m256i odd = _mm256_srli_epi64(
        _mm256_add_epi64(
            _mm256_add_epi64(_mm256_mul_epi32(alpha, _mm256_srli_epi64(x, 32)),
                             _mm256_mul_epi32(beta, _mm256_srli_epi64(y, 32))),
            round),
        online::kWeightBits);
    const __m256i mixed = _mm256_or_si256(_mm256_and_si256(even, low),
                                          _mm256_slli_epi64(odd, 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + 8 * b), mixed);
  }
}

// The row primitives above as the tile loop's BlockPartials, then the loop.
#include "kernels/attention/attention_seq_rows.inc"
// (not sorted: the loop needs the rows)
#include "kernels/attention/attention_seq_impl.inc"
}  // namespace seq::avx2

namespace cpu {

void AttentionSeqAvx2(const SeqAttentionArgs& args, size_t first,
                      size_t count) {
  seq::avx2::RunUnits(args, first, count);
}

void AttentionStreamUnitAvx2(const StreamUnitArgs& unit) {
  seq::avx2::StreamUnit(unit);
}

}  // namespace cpu
}  // namespace npuk
