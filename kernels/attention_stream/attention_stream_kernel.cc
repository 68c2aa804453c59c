// The stream entry is the sequence attention's portable tile code itself
// (kernels/attention/attention_seq_portable.h: TakeKeyTile on a resident
// QueryTileState, OutputRow), one key tile per call, with one 8 KB
// prepared key tile on the stack (attention_stream_design.py's
// stack_size).
#include "kernels/attention_stream/attention_stream_kernel.h"

#include "kernels/attention/attention_seq_portable.h"
#include "kernels/common/softmax.h"

namespace {

namespace portable = npuk::seq::portable;

static_assert(sizeof(portable::QueryTileState) ==
              npuk::kStreamStateWords * sizeof(int32_t));
static_assert(alignof(portable::QueryTileState) <= alignof(int32_t));

npuk::AttentionStreamRecord ReadRecord(const int32_t* qrec) {
  const int32_t* w = qrec + npuk::kStreamMatrixBytes / 4;
  return npuk::ClampStreamRecord(npuk::AttentionStreamRecord{
      w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8], w[9]});
}

}  // namespace

extern "C" void attention_stream_step(const int32_t* qrec, const int8_t* kv,
                                      int32_t* state, int8_t* out,
                                      int32_t step) {
  constexpr int kT = portable::kSeqT;
  constexpr int kD = portable::kSeqD;
  const npuk::AttentionStreamRecord r = ReadRecord(qrec);
  const auto* q = reinterpret_cast<const int8_t*>(qrec);
  auto* st = reinterpret_cast<portable::QueryTileState*>(state);
  if (step == 0) {
    for (int i = 0; i < kT; ++i) st->seen[i] = false;
  }
  if (step >= 0 && step < r.tiles) {
    int32_t limit[kT];
    for (int i = 0; i < kT; ++i) {
      limit[i] = npuk::StreamLimit(i, r.rows, r.keys, r.diag, step);
    }
    int32_t keys = r.keys - step * kT;
    keys = keys < 0 ? 0 : (keys > kT ? kT : keys);
    portable::PreparedTile tile;
    portable::PrepareTile(kv, kv + npuk::kStreamMatrixBytes, keys, &tile);
    portable::TakeKeyTile(
        q, r.rows, tile, limit,
        npuk::softmax::MakeExpParams(r.score_multiplier, r.score_shift), st);
  }
  if (step != r.steps - 1) return;
  const npuk::online::OutputScale scale{r.output_multiplier, r.output_shift};
  for (int i = 0; i < kT; ++i) {
    if (i >= r.rows || !st->seen[i]) {
      for (int c = 0; c < kD; ++c) out[i * kD + c] = 0;
      continue;
    }
    portable::OutputRow(st->acc[i], scale, out + i * kD);
  }
}
