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

// Query tiles of one head against key tiles (the cost unit): with causal
// masking only the key tiles some row of the query tile sees count.
size_t SeqTilePairs(int32_t lq, int32_t lk, bool causal);

namespace seq {

// The portable reference (the formulas exactly as written, what npu-sim
// runs): units [first, first + count) of `args`.
void AttentionSeqReference(const SeqAttentionArgs& args, size_t first,
                           size_t count);

}  // namespace seq

namespace cpu {

// The CPU backend's path: the same bytes, with AVX-512 VNNI or AVX2 when
// the CPU has them (the best it has; the portable build otherwise).
void AttentionSeq(const SeqAttentionArgs& args, size_t first, size_t count);
// "avx512vnni", "avx2" or "portable": the path AttentionSeq and
// AttentionPair take here.
const char* AttentionSeqPath();
// The paths forced, for tests and benchmarks.
void AttentionSeqAvx2(const SeqAttentionArgs& args, size_t first,
                      size_t count);  // REQUIRES: HasAvx2()
void AttentionSeqAvx512(const SeqAttentionArgs& args, size_t first,
                        size_t count);  // REQUIRES: HasAvx512Vnni()

// One (query tile, key tile) pair's row partials, the device item of
// kernels/attention_pair (PairPartials in attention_seq_impl.inc): q|k|v
// int8 [64][64] each, back to back; limit[r] in [0, 64] the keys row r
// sees; out int32 [64][66]. The bytes of the pair kernel's portable entry,
// by the best path the CPU has (AttentionSeqPath()); the AVX ones forced.
void AttentionPair(const int8_t* qkv, const int32_t* limit,
                   ScoreScale score_scale, int32_t* out);
void AttentionPairAvx2(const int8_t* qkv, const int32_t* limit,
                       ScoreScale score_scale,
                       int32_t* out);  // REQUIRES: HasAvx2()
void AttentionPairAvx512(const int8_t* qkv, const int32_t* limit,
                         ScoreScale score_scale,
                         int32_t* out);  // REQUIRES: HasAvx512Vnni()

// acc[c] = online::MixValue(acc[c], o[c], mix) for c < 64, with o the
// little-endian bytes of 64 int32 at any alignment (a pair's partials in a
// run's output): the host fold of the attention model, by the best path.
void MixPartials(int32_t* acc, const uint8_t* o, const online::Mix& mix);
void MixPartialsAvx2(int32_t* acc, const uint8_t* o,
                     const online::Mix& mix);  // REQUIRES: HasAvx2()
void MixPartialsAvx512(int32_t* acc, const uint8_t* o,
                       const online::Mix& mix);  // REQUIRES: HasAvx512Vnni()
// out[c] = online::OutputValue(acc[c], scale) for c < 64: the fold's
// last step, by the best path (AVX-512 or the plain loop).
void OutputPartials(const int32_t* acc, online::OutputScale scale, int8_t* out);
void OutputPartialsAvx512(const int32_t* acc, online::OutputScale scale,
                          int8_t* out);  // REQUIRES: HasAvx512Vnni()

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
