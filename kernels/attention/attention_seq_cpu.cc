#include <cstring>

#include "kernels/attention/attention_seq.h"
#include "kernels/attention/attention_seq_portable.h"
#include "kernels/common/cpu_features.h"

namespace npuk::cpu {

const char* AttentionSeqPath() {
  if (HasAvx512Vnni()) return "avx512vnni";
  return HasAvx2() ? "avx2" : "portable";
}

void AttentionSeq(const SeqAttentionArgs& args, size_t first, size_t count) {
  if (HasAvx512Vnni()) {
    AttentionSeqAvx512(args, first, count);
  } else if (HasAvx2()) {
    AttentionSeqAvx2(args, first, count);
  } else {
    seq::AttentionSeqReference(args, first, count);
  }
}

void AttentionPair(const int8_t* qkv, const int32_t* limit,
                   ScoreScale score_scale, int32_t* out) {
  if (HasAvx512Vnni()) {
    AttentionPairAvx512(qkv, limit, score_scale, out);
  } else if (HasAvx2()) {
    AttentionPairAvx2(qkv, limit, score_scale, out);
  } else {
    constexpr int kTile = seq::portable::kSeqT * seq::portable::kSeqD;
    seq::portable::PairPartials(
        qkv, qkv + kTile, qkv + 2 * kTile, limit,
        softmax::MakeExpParams(score_scale.multiplier, score_scale.shift), out);
  }
}

void AttentionStreamUnit(const StreamUnitArgs& unit) {
  if (HasAvx512Vnni()) {
    AttentionStreamUnitAvx512(unit);
  } else if (HasAvx2()) {
    AttentionStreamUnitAvx2(unit);
  } else {
    seq::portable::StreamUnit(unit);
  }
}

void MixPartials(int32_t* acc, const uint8_t* o, const online::Mix& mix) {
  if (HasAvx512Vnni()) {
    MixPartialsAvx512(acc, o, mix);
  } else if (HasAvx2()) {
    MixPartialsAvx2(acc, o, mix);
  } else {
    for (int c = 0; c < seq::portable::kSeqD; ++c) {
      int32_t word;
      std::memcpy(&word, o + 4 * c, sizeof word);
      acc[c] = online::MixValue(acc[c], word, mix);
    }
  }
}

void OutputPartials(const int32_t* acc, online::OutputScale scale,
                    int8_t* out) {
  if (HasAvx512Vnni()) {
    OutputPartialsAvx512(acc, scale, out);
  } else {
    seq::portable::OutputRow(acc, scale, out);
  }
}

}  // namespace npuk::cpu
