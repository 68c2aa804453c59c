// The attention_pair kernel on the AIE2 vector unit (not in a design yet):
// the sequence attention's vector step (kernels/attention/
// attention_seq_vec.h) for one key tile on a cleared state, then the
// state's rows written out in the pair's [64][66] layout. The host face is
// byte-identical to attention_pair_64x64 (attention_pair_test.cc) and is
// what the cycle model prices the pair's vector variant by
// (kernels/vec/cycle_model.cc).
#ifndef NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_VEC_H_
#define NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_VEC_H_

#include <cstdint>

#include "kernels/attention/attention_seq_vec.h"
#include "kernels/attention_pair/attention_pair_kernel.h"

// q_blk, k_blk, v_blk in attention_vec_blocks's layouts
// (attention_kernel_vec.h), the record's fields as attention_pair_64x64
// takes them; out int32 [64][66] as attention_pair_64x64 writes it.
// `state` is the core's working state (16.8 KB; overwritten).
extern "C" void attention_pair_vec(const int8_t* q_blk, const int8_t* k_blk,
                                   const int8_t* v_blk, int32_t* out,
                                   int32_t score_multiplier,
                                   int32_t score_shift, int32_t rows,
                                   int32_t keys, int32_t diag,
                                   AttentionSeqVecState* state);

namespace npuk::attention_vec {

// attention_pair_64x64's layouts (q|k|v row major in): the blocking done
// here as the mem tile's DMA would (not counted), then attention_pair_vec.
void AttentionPairVec(const int8_t* qkv, const AttentionPairRecord& record,
                      int32_t* out);

}  // namespace npuk::attention_vec

#endif  // NPUK_KERNELS_ATTENTION_PAIR_ATTENTION_PAIR_VEC_H_
