// The pair entry is the sequence attention's portable tile code itself
// (kernels/attention/attention_seq_portable.h, PairPartials): the row
// primitives seq::AttentionSeqReference runs, with one 8 KB prepared key
// tile on the stack (attention_pair_design.py's stack_size).
#include "kernels/attention_pair/attention_pair_kernel.h"

#include "kernels/attention/attention_seq_portable.h"
#include "kernels/common/softmax.h"

extern "C" void attention_pair_64x64(const int8_t* qkv, int32_t* out,
                                     int32_t score_multiplier,
                                     int32_t score_shift, int32_t rows,
                                     int32_t keys, int32_t diag) {
  constexpr size_t kTile = npuk::kAttentionPairMatrixBytes;
  int32_t limit[npuk::kAttentionPairTile];
  for (int32_t r = 0; r < npuk::kAttentionPairTile; ++r) {
    limit[r] = npuk::AttentionPairLimit(r, rows, keys, diag);
  }
  npuk::seq::portable::PairPartials(
      qkv, qkv + kTile, qkv + 2 * kTile, limit,
      npuk::softmax::MakeExpParams(score_multiplier, score_shift), out);
}
