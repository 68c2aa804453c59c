#include "kernels/attention/attention_seq.h"

#include "kernels/common/online_softmax.h"
#include "kernels/common/softmax.h"

namespace npuk {
namespace seq::portable {

inline constexpr int kSeqT = 64;  // tokens per tile
inline constexpr int kSeqD = 64;  // dims per token

// k transposed, so the score loop runs over contiguous keys (it streams on
// the AIE core, as attention_64x64's does); v as it comes.
struct PreparedTile {
  int8_t kt[kSeqD * kSeqT];
  int8_t v[kSeqT * kSeqD];
};

void PrepareTile(const int8_t* k, const int8_t* v, int keys, PreparedTile* t) {
  for (int j = 0; j < kSeqT; ++j) {
    for (int d = 0; d < kSeqD; ++d) {
      t->kt[d * kSeqT + j] = j < keys ? k[j * kSeqD + d] : int8_t{0};
      t->v[j * kSeqD + d] = j < keys ? v[j * kSeqD + d] : int8_t{0};
    }
  }
}

void RowScores(const int8_t* q, const PreparedTile& t, int32_t* score) {
  for (int j = 0; j < kSeqT; ++j) score[j] = 0;
  for (int d = 0; d < kSeqD; ++d) {
    const int16_t qd = q[d];
    for (int j = 0; j < kSeqT; ++j) score[j] += qd * t.kt[d * kSeqT + j];
  }
}

void RowValues(const int32_t* p, const PreparedTile& t, int32_t* o) {
  for (int c = 0; c < kSeqD; ++c) o[c] = 0;
  for (int j = 0; j < kSeqT; ++j) {
    const int16_t pj = static_cast<int16_t>(p[j]);  // <= 32767
    if (pj == 0) continue;
    for (int c = 0; c < kSeqD; ++c) o[c] += pj * t.v[j * kSeqD + c];
  }
}

uint32_t RowExp(const int32_t* score, int lim, int32_t row_max,
                const softmax::ExpParams& params, int32_t* e) {
  uint32_t sum = 0;
  for (int j = 0; j < kSeqT; ++j) {
    if (j < lim) {
      const uint32_t a = static_cast<uint32_t>(row_max - score[j]);
      e[j] = softmax::Exp2NegQ15(softmax::Exponent(a, params));
    } else {
      e[j] = 0;
    }
    sum += static_cast<uint32_t>(e[j]);
  }
  return sum;
}

// The reference prepares every key tile where it is used.
PreparedTile* HeadCache(int32_t) { return nullptr; }

void MixRow(int32_t* acc, const int32_t* o, const online::Mix& mix) {
  for (int c = 0; c < kSeqD; ++c) acc[c] = online::MixValue(acc[c], o[c], mix);
}

#include "kernels/attention/attention_seq_impl.inc"
}  // namespace seq::portable

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
