// attention_pair_vec (attention_pair_vec.h). The rows of the pair's output
// are 264 B apart with o_t at +8 B, so they are 8-byte aligned only and the
// 256-bit vector stores cannot write them: the partials go out as 32-bit
// scalar stores on the one store unit (64 x 66 of them), read from the
// state by scalar loads. That is ~4.7k of the pair's modelled cycles; an
// output FIFO in the state's block layout, reordered by the mem tile's DMA
// (it moves 32-bit words, so it could), would make it vector stores.
#include "kernels/attention_pair/attention_pair_vec.h"

#include "kernels/attention/attention_kernel_vec.h"
#include "kernels/vec/vec.h"

extern "C" void attention_pair_vec(const int8_t* q_blk, const int8_t* k_blk,
                                   const int8_t* v_blk, int32_t* out,
                                   int32_t score_multiplier,
                                   int32_t score_shift, int32_t rows,
                                   int32_t keys, int32_t diag,
                                   AttentionSeqVecState* state) {
  namespace v = ::npuk::vec;
  namespace av = ::npuk::attention_vec;
  constexpr int kT = npuk::kAttentionPairTile;
  constexpr int kRow = static_cast<int>(npuk::kAttentionPairRowWords);
  // The record's limits: one pipelined loop, ~6 operations a row (the
  // compare with rows, the clamps, the min) and a store.
  v::BeginRegion(av::kSeqSetup);
  v::LoopEntry();
  alignas(64) int32_t limit[kT];
  for (int r = 0; r < kT; ++r) {
    limit[r] = npuk::AttentionPairLimit(r, rows, keys, diag);
  }
  v::Scalar(6 * kT);
  v::ScalarMem(kT);
  attention_seq_vec_begin(state);
  attention_seq_vec_step(q_blk, k_blk, v_blk, limit, score_multiplier,
                         score_shift, state);
  // The partials: per row one pipelined loop of 66 stores.
  v::BeginRegion(av::kSeqOutput);
  for (int r = 0; r < kT; ++r) {
    v::LoopEntry();
    v::ScalarMem(1);
    int32_t* row = out + r * kRow;
    if (state->seen[r] == 0) {
      for (int c = 0; c < kRow; ++c) row[c] = 0;
      v::ScalarStore(kRow);
      continue;
    }
    row[0] = state->max[r];
    row[1] = static_cast<int32_t>(state->weight[r]);
    for (int c = 0; c < kT; ++c) row[2 + c] = state->acc[av::Block4x8(r, c)];
    v::ScalarMem(2 + kT);
    v::ScalarStore(kRow);
  }
}

namespace npuk::attention_vec {

void AttentionPairVec(const int8_t* qkv, const AttentionPairRecord& record,
                      int32_t* out) {
  constexpr int n = kAttentionPairTile;
  const int8_t* q = qkv;
  const int8_t* k = qkv + kAttentionPairMatrixBytes;
  const int8_t* vv = qkv + 2 * kAttentionPairMatrixBytes;
  alignas(64) int8_t q_blk[n * n], k_blk[n * n], v_blk[n * n];
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < n; ++d) {
      q_blk[Block4x8(i, d)] = q[i * n + d];
      k_blk[Block8x8(i, d)] = k[i * n + d];
      v_blk[Block4x8(i, d)] = vv[i * n + d];
    }
  }
  AttentionSeqVecState state{};
  attention_pair_vec(q_blk, k_blk, v_blk, out, record.score_multiplier,
                     record.score_shift, record.rows, record.keys, record.diag,
                     &state);
}

}  // namespace npuk::attention_vec
