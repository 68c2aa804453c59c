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

void AttentionStreamUnit(const StreamUnitArgs& unit) {
  if (HasAvx512Vnni()) {
    AttentionStreamUnitAvx512(unit);
  } else if (HasAvx2()) {
    AttentionStreamUnitAvx2(unit);
  } else {
    seq::portable::StreamUnit(unit);
  }
}

}  // namespace npuk::cpu
