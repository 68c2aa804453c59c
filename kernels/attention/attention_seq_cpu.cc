#include "kernels/attention/attention_seq.h"
#include "kernels/common/cpu_features.h"

namespace npuk::cpu {

void AttentionSeq(const SeqAttentionArgs& args, size_t first, size_t count) {
  if (HasAvx2()) {
    AttentionSeqAvx2(args, first, count);
  } else {
    seq::AttentionSeqReference(args, first, count);
  }
}

}  // namespace npuk::cpu
