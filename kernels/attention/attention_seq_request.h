// The contract of attention over whole sequences as a request states it
// (issue 15): q INT8 [N, Lq, 64], k and v INT8 [N, Lk, 64], parameters
// score_scale, output_scale and causal. Host only (absl). The daemon's
// model is to call this before anything runs; every refusal is
// INVALID_ARGUMENT and says what was wrong and what to send instead.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_REQUEST_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_REQUEST_H_

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"

namespace npuk {

struct SeqAttentionShape {
  int32_t n;
  int32_t lq;
  int32_t lk;
  bool causal;
};

// OK, or INVALID_ARGUMENT "parameter 'score_scale' is ...; it must be ..."
// when the value is outside ScoreScaleInRange: the one wording of that
// refusal (the attention and attention_stream parameter records, and
// CheckSeqAttention below).
absl::Status CheckScoreScale(double score_scale);

// Checks the three shapes and the parameters; on success the shape.
absl::StatusOr<SeqAttentionShape> CheckSeqAttention(
    std::span<const int64_t> q_dims, std::span<const int64_t> k_dims,
    std::span<const int64_t> v_dims, double score_scale, double output_scale,
    bool causal);

}  // namespace npuk

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_REQUEST_H_
