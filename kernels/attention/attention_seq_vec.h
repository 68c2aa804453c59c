// The vectorised AIE2 kernel of attention over whole sequences (issue 15),
// written once against the vector vocabulary (kernels/vec/vec.h). A core
// keeps one query tile and its running state resident and takes the key
// tiles of its head one after the other, as the object FIFOs of the design
// bring them:
//   attention_seq_vec_begin   once per query tile: clears the state;
//   attention_seq_vec_step    once per key tile: the tile's scores, softmax
//                             and P v as attention_vec_blocks computes them
//                             (QK^T on aie::mmul<4, 8, 8>, P v on
//                             aie::mmul<4, 4, 8>), masked per row, then the
//                             online recurrence of
//                             kernels/common/online_softmax.h: MixWeights per
//                             row on the scalar unit, MixValue on 64-bit
//                             lanes with every product on 16-bit digits;
//   attention_seq_vec_end     the output stage (OutputValue) on 64-bit lanes.
// The host face is byte-identical to seq::AttentionSeqReference (tests/
// kernels/attention_seq_test.cc) and counts its operations for the cycle
// model (kernels/vec/cycle_model.h, CostOfSeqAttention).
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_VEC_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_VEC_H_

#include <cstddef>
#include <cstdint>

#include "kernels/attention/attention_seq.h"

// What stays on the core between steps: 16.8 KB of the 64 KB tile memory.
struct alignas(64) AttentionSeqVecState {  // vector loads need 64 B
  int32_t acc[64 * 64];  // Q15, out_blk's layout (attention_kernel_vec.h)
  int32_t max[64];       // the running max score of each row
  uint32_t weight[64];   // the running weight W of each row
  int32_t seen[64];      // 1 once a row has taken a visible key
};

extern "C" {

void attention_seq_vec_begin(AttentionSeqVecState* state);

// One key tile. q_blk, k_blk and v_blk in attention_vec_blocks's layouts
// (rows and keys beyond the sequence zero); limit[r] in [0, 64] the keys
// of this tile row r sees (a prefix; 0 for rows past the end of the query
// tile and for rows the causal mask hides the whole tile from).
void attention_seq_vec_step(const int8_t* q_blk, const int8_t* k_blk,
                            const int8_t* v_blk, const int32_t* limit,
                            int32_t score_multiplier, int32_t score_shift,
                            AttentionSeqVecState* state);

// out_blk (int8, attention_vec_blocks's layout) from the state; a row that
// never saw a key gets zeros.
void attention_seq_vec_end(const AttentionSeqVecState* state, int8_t* out_blk,
                           int32_t output_multiplier, int32_t output_shift);

}  // extern "C"

namespace npuk::attention_vec {

// The regions (vec::Profile) the three entries count in, each priced on
// its own by the cycle model (attention_stream's vector price:
// kernels/vec/cycle_model.cc, CountVectorAttentionStream).
enum SeqRegion {
  kSeqScores = 0,
  kSeqSoftmax = 1,
  kSeqRows = 2,
  kSeqPv = 3,
  kSeqMix = 4,
  kSeqSetup = 5,
  kSeqOutput = 6,
  kSeqKeys = 7,
};

// Units [first, first + count) of `args` (attention_seq.h) through the
// three entries above, the blocking done here as the mem tile's DMA would
// (not counted). Byte-identical to seq::AttentionSeqReference.
void AttentionSeqVec(const SeqAttentionArgs& args, size_t first, size_t count);

}  // namespace npuk::attention_vec

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_VEC_H_
