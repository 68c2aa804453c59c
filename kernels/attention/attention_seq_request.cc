#include "kernels/attention/attention_seq_request.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"

namespace npuk {
namespace {

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("attention: ", what));
}

std::string Shape(std::span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

// [N, L, 64] with N >= 1; L is checked by the caller.
absl::Status CheckRank(const char* name, const char* length,
                       std::span<const int64_t> dims) {
  if (dims.size() != 3 || dims[2] != 64 || dims[0] < 1 || dims[0] > INT32_MAX) {
    return Invalid(absl::StrCat("input '", name, "' has shape ", Shape(dims),
                                "; it must be [N, ", length,
                                ", 64]: N = batch x heads >= 1, ", length,
                                " tokens, 64 dims per head (N < 2^31)"));
  }
  return absl::OkStatus();
}

absl::Status CheckLength(const char* name, const char* length, int64_t l) {
  if (l < 1 || l > kAttentionMaxSequence) {
    return Invalid(absl::StrCat("input '", name, "' has ", length, " = ", l,
                                " tokens; it must be in [1, ",
                                kAttentionMaxSequence,
                                "] (split longer sequences into windows)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckScoreScale(double score_scale) {
  if (ScoreScaleInRange(score_scale)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "parameter 'score_scale' is ", score_scale,
      "; it must be a finite number in [", kMinScoreScale, ", ", kMaxScoreScale,
      "] (for float Q, K quantised with scales s_q, s_k send s_q*s_k/8)"));
}

absl::StatusOr<SeqAttentionShape> CheckSeqAttention(
    std::span<const int64_t> q_dims, std::span<const int64_t> k_dims,
    std::span<const int64_t> v_dims, double score_scale, double output_scale,
    bool causal) {
  if (absl::Status s = CheckRank("q", "Lq", q_dims); !s.ok()) return s;
  if (absl::Status s = CheckRank("k", "Lk", k_dims); !s.ok()) return s;
  if (absl::Status s = CheckRank("v", "Lk", v_dims); !s.ok()) return s;
  if (q_dims[0] != k_dims[0] || q_dims[0] != v_dims[0]) {
    return Invalid(
        absl::StrCat("q, k and v must have the same N (batch x heads); q has ",
                     q_dims[0], ", k has ", k_dims[0], ", v has ", v_dims[0],
                     ": send one k and one v per query head"));
  }
  if (k_dims[1] != v_dims[1]) {
    return Invalid(absl::StrCat(
        "k has ", k_dims[1], " tokens and v has ", v_dims[1],
        "; every key needs its value: send k and v of the same length"));
  }
  if (absl::Status s = CheckLength("q", "Lq", q_dims[1]); !s.ok()) return s;
  if (absl::Status s = CheckLength("k", "Lk", k_dims[1]); !s.ok()) return s;
  if (absl::Status s = CheckScoreScale(score_scale); !s.ok()) {
    return Invalid(std::string(s.message()));
  }
  if (!online::OutputScaleInRange(output_scale)) {
    return Invalid(absl::StrCat(
        "parameter 'output_scale' is ", output_scale,
        "; it must be a finite number in [", online::kMinOutputScale, ", ",
        online::kMaxOutputScale,
        "] (out = softmax(q k^T score_scale) v / output_scale; for V "
        "quantised with scale s_v and a float result of peak P send "
        "P / (127 s_v))"));
  }
  if (causal && q_dims[1] > k_dims[1]) {
    return Invalid(absl::StrCat(
        "causal attention needs Lq <= Lk (query i sees keys j <= i + Lk - "
        "Lq); got Lq = ",
        q_dims[1], ", Lk = ", k_dims[1],
        ": send the whole key/value cache, or causal=false"));
  }
  return SeqAttentionShape{static_cast<int32_t>(q_dims[0]),
                           static_cast<int32_t>(q_dims[1]),
                           static_cast<int32_t>(k_dims[1]), causal};
}

}  // namespace npuk
