#include "kernels/attention/attention_seq.h"

#include "kernels/attention/attention_seq_portable.h"

namespace npuk {

size_t SeqTilePairs(int32_t lq, int32_t lk, bool causal) {
  size_t pairs = 0;
  for (int32_t q0 = 0; q0 < lq; q0 += 64) {
    const int32_t rows = lq - q0 < 64 ? lq - q0 : 64;
    const int32_t end = causal ? q0 + rows + lk - lq : lk;
    pairs += static_cast<size_t>(SeqTiles(end < lk ? end : lk));
  }
  return pairs;
}

namespace seq {

void AttentionSeqReference(const SeqAttentionArgs& args, size_t first,
                           size_t count) {
  portable::RunUnits(args, first, count);
}

void AttentionStreamUnitReference(const StreamUnitArgs& unit) {
  portable::StreamUnit(unit);
}

}  // namespace seq
}  // namespace npuk

extern "C" void attention_seq(const int8_t* q, const int8_t* k, const int8_t* v,
                              int8_t* out, int32_t n, int32_t lq, int32_t lk,
                              int32_t causal, int32_t score_multiplier,
                              int32_t score_shift, int32_t output_multiplier,
                              int32_t output_shift) {
  const npuk::SeqAttentionArgs args{
      .q = q,
      .k = k,
      .v = v,
      .out = out,
      .n = n,
      .lq = lq,
      .lk = lk,
      .causal = causal != 0,
      .score_scale = {score_multiplier, score_shift},
      .output_scale = {output_multiplier, output_shift}};
  npuk::seq::AttentionSeqReference(args, 0,
                                   static_cast<size_t>(n) * npuk::SeqTiles(lq));
}
