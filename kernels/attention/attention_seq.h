// Attention over whole sequences (issue 15): q [n][lq][64], k and v
// [n][lk][64] int8, out [n][lq][64] int8 =
//   sat8(round(softmax_row(q k^T * score_scale, masked) v / output_scale))
// composed from 64x64 tiles by the online softmax of
// kernels/common/online_softmax.h. Keys j >= lk are padding; with `causal`
// query i sees keys j <= i + lk - lq. Every backend runs the same integer
// recurrence in the same key-tile order, so the bytes are the same
// everywhere; for lq = lk = 64, no mask and output scale 1 they are
// attention_64x64's.
//
// Work is split in "query tiles": unit u is head u / QueryTiles(lq), rows
// [64 (u % QueryTiles(lq)), ...) of it. Units are independent.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_H_

#include <cstddef>
#include <cstdint>

#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"

namespace npuk {

inline constexpr int32_t kAttentionMaxSequence = 4096;

struct SeqAttentionArgs {
  const int8_t* q;  // [n][lq][64]
  const int8_t* k;  // [n][lk][64]
  const int8_t* v;  // [n][lk][64]
  int8_t* out;      // [n][lq][64]
  int32_t n;
  int32_t lq;  // in [1, kAttentionMaxSequence]
  int32_t lk;  // in [1, kAttentionMaxSequence], >= lq when causal
  bool causal;
  ScoreScale score_scale;
  online::OutputScale output_scale;
};

constexpr int32_t SeqTiles(int32_t length) { return (length + 63) / 64; }

// One query tile against key tiles that arrive one after the other, as a
// core of kernels/attention_stream takes them off its object FIFO. Row r
// of the query tile sees, of key tile t (keys 64 t ... 64 t + 63 of the
// sequence), the first StreamLimit(r, rows, keys, diag, t):
//   r < rows ? clamp(min(r + diag, keys) - 64 t, 0, 64) : 0
// with keys = lk and diag = lk without the mask, q0 + lk - lq + 1 with it
// (q0 the tile's first row): QueryTile's limits. Any int32 rows, keys and
// diag are safe: keys and diag are clamped to [-8192, 8192] first, which
// changes no limit of a record with rows, keys <= 4096 and t < 64.
constexpr int32_t StreamLimit(int32_t r, int32_t rows, int32_t keys,
                              int32_t diag, int32_t t) {
  if (r >= rows) return 0;
  const auto clamp = [](int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
  };
  const int32_t d = clamp(diag, -8192, 8192);
  const int32_t k = clamp(keys, -8192, 8192);
  const int32_t seen = (r + d < k ? r + d : k) - 64 * clamp(t, 0, 64);
  return clamp(seen, 0, 64);
}

struct StreamUnitArgs {
  const int8_t* q;   // [64][64], rows >= `rows` zero
  const int8_t* kv;  // key tile t: k [64][64] then v [64][64] at
                     // kv + t * kv_stride
  size_t kv_stride;  // bytes, >= 8192
  int8_t* out;       // [64][64]
  int32_t rows;      // in [0, 64]
  int32_t keys;      // StreamLimit's
  int32_t diag;
  int32_t tiles;  // key tiles taken, in [0, 64]
  ScoreScale score_scale;
  online::OutputScale output_scale;
};

// Query tiles of one head against key tiles (the cost unit): with causal
// masking only the key tiles some row of the query tile sees count.
size_t SeqTilePairs(int32_t lq, int32_t lk, bool causal);

namespace seq {

// The portable reference (the formulas exactly as written, what npu-sim
// runs): units [first, first + count) of `args`.
void AttentionSeqReference(const SeqAttentionArgs& args, size_t first,
                           size_t count);

// One streamed query tile by the portable loops (what the AIE entry of
// kernels/attention_stream runs, one key tile per call).
void AttentionStreamUnitReference(const StreamUnitArgs& unit);

}  // namespace seq

namespace cpu {

// The CPU backend's path: the same bytes, with AVX-512 VNNI or AVX2 when
// the CPU has them (the best it has; the portable build otherwise).
void AttentionSeq(const SeqAttentionArgs& args, size_t first, size_t count);
// "avx512vnni", "avx2" or "portable": the path AttentionSeq and
// AttentionStreamUnit take here.
const char* AttentionSeqPath();
// The paths forced, for tests and benchmarks.
void AttentionSeqAvx2(const SeqAttentionArgs& args, size_t first,
                      size_t count);  // REQUIRES: HasAvx2()
void AttentionSeqAvx512(const SeqAttentionArgs& args, size_t first,
                        size_t count);  // REQUIRES: HasAvx512Vnni()

// One streamed query tile (StreamUnitArgs), by the best path the CPU has
// (AttentionSeqPath()); the bytes of AttentionStreamUnitReference. The AVX
// ones forced.
void AttentionStreamUnit(const StreamUnitArgs& unit);
void AttentionStreamUnitAvx2(
    const StreamUnitArgs& unit);  // REQUIRES: HasAvx2()
void AttentionStreamUnitAvx512(
    const StreamUnitArgs& unit);  // REQUIRES: HasAvx512Vnni()

}  // namespace cpu
}  // namespace npuk

// C entry for the Python accuracy tests (ctypes): all n * SeqTiles(lq)
// units. causal is 0 or 1.
extern "C" void attention_seq(const int8_t* q, const int8_t* k, const int8_t* v,
                              int8_t* out, int32_t n, int32_t lq, int32_t lk,
                              int32_t causal, int32_t score_multiplier,
                              int32_t score_shift, int32_t output_multiplier,
                              int32_t output_shift);

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_H_
