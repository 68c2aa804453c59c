// The attention_pair kernel entry, compiled for the AIE2 cores (Peano) and
// for the host, where it is the reference: one (query tile, key tile) pair
// of the whole-sequence attention in, the online-softmax partials of the
// query tile's rows against that key tile out. The attention model cuts a
// request into pairs and combines the partials on the host in key order
// (online::MixWeights / MixValue, then OutputValue), which gives exactly
// seq::AttentionSeqReference's bytes (kernels/attention/README.md, "The
// pair kernel"). Freestanding: <cstdint>/<cstddef> only.
#ifndef NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_KERNEL_H_
#define NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace npuk {

inline constexpr int32_t kAttentionPairTile = 64;  // rows, keys and dims
inline constexpr size_t kAttentionPairMatrixBytes =
    kAttentionPairTile * kAttentionPairTile;  // 4096
inline constexpr size_t kAttentionPairInBytes =
    3 * kAttentionPairMatrixBytes;  // q|k|v, 12288
// Per row: m_t, S_t, o_t[0..63] (int32).
inline constexpr size_t kAttentionPairRowWords = 2 + kAttentionPairTile;
inline constexpr size_t kAttentionPairOutWords =
    kAttentionPairTile * kAttentionPairRowWords;
inline constexpr size_t kAttentionPairOutBytes =
    kAttentionPairOutWords * sizeof(int32_t);  // 16896

// A pair's parameter record (device argument 1): six little-endian int32.
struct AttentionPairRecord {
  int32_t score_multiplier;  // the ScoreScale (kernels/common/score_scale.h)
  int32_t score_shift;
  int32_t rows;      // rows of the query tile inside the sequence
  int32_t keys;      // keys of the key tile inside the sequence
  int32_t diag;      // row r sees keys j < r + diag: 64 without a mask,
                     // q0 + lk - lq + 1 - k0 for the causal mask
  int32_t reserved;  // 0
};
static_assert(sizeof(AttentionPairRecord) == 24);
inline constexpr size_t kAttentionPairRecordBytes = sizeof(AttentionPairRecord);

// The keys of the key tile row r of the query tile sees (a prefix):
// r < rows ? clamp(min(keys, r + diag), 0, 64) : 0, for r in [0, 64) and
// any int32 rows, keys and diag. diag is clamped to [-64, 64] first, which
// changes no limit (r + diag is then below 0 or above 63 either way) and
// keeps r + diag in int32.
constexpr int32_t AttentionPairLimit(int32_t r, int32_t rows, int32_t keys,
                                     int32_t diag) {
  if (r >= rows) return 0;
  const int32_t d =
      diag < -kAttentionPairTile
          ? -kAttentionPairTile
          : (diag > kAttentionPairTile ? kAttentionPairTile : diag);
  int32_t lim = r + d;
  if (keys < lim) lim = keys;
  return lim < 0 ? 0 : (lim > kAttentionPairTile ? kAttentionPairTile : lim);
}

}  // namespace npuk

// qkv: q, k, v int8 [64][64] each, row major, back to back (12288 bytes;
// rows beyond the sequence zero). out: int32 [64][66]; row r = {m_t, S_t,
// o_t[0..63]} of its first AttentionPairLimit(r, rows, keys, diag) keys
// (the tile max score, the Q15 sum of the exponentials, the Q15 value
// average), all zero when that limit is 0. The score scale is
// score_multiplier 2^(score_shift - 31) as QuantizeScoreScale makes it
// (out-of-contract pairs are clamped, as in attention_64x64).
extern "C" void attention_pair_64x64(const int8_t* qkv, int32_t* out,
                                     int32_t score_multiplier,
                                     int32_t score_shift, int32_t rows,
                                     int32_t keys, int32_t diag);

#endif  // NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_KERNEL_H_
