#include "server/telemetry/model_stats.h"

namespace npuk {

void ModelStats::OnRun(const KernelSpec&, size_t /*items*/, size_t user_items,
                       absl::Duration compute, bool ok) {
  if (user_items == 0 || !ok) return;  // canary-only or failed runs
  absl::MutexLock lock(&mu_);
  ++execution_count_;
  inference_count_ += user_items;
  // Keyed by the users' items only: a canary that rides along in a run is
  // not an inference, so Σ batch_size × count stays inference_count.
  batch_stats_[user_items].compute_infer.Add(compute);
}

void ModelStats::RecordSuccess(size_t, absl::Duration queue,
                               absl::Duration compute, absl::Duration total) {
  absl::MutexLock lock(&mu_);
  success_.Add(total);
  queue_.Add(queue);
  compute_.Add(compute);
  last_inference_ms_ = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
}

FailureReason FailureReasonOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kResourceExhausted:
      return FailureReason::kRejected;
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
      return FailureReason::kCanceled;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kInternal:
      return FailureReason::kBackend;
    default:
      return FailureReason::kOther;
  }
}

void ModelStats::RecordFailure(FailureReason reason, absl::Duration total) {
  absl::MutexLock lock(&mu_);
  fail_.Add(total);
  ++failures_[static_cast<int>(reason)];
}

void ModelStats::Snapshot(inference::ModelStatistics* out) const {
  absl::MutexLock lock(&mu_);
  out->set_name(model_);
  out->set_version("1");
  out->set_last_inference(last_inference_ms_);
  out->set_inference_count(inference_count_);
  out->set_execution_count(execution_count_);
  auto set = [](inference::StatisticDuration* d, const Duration& v) {
    d->set_count(v.count);
    d->set_ns(v.ns);
  };
  auto* s = out->mutable_inference_stats();
  set(s->mutable_success(), success_);
  set(s->mutable_fail(), fail_);
  set(s->mutable_queue(), queue_);
  set(s->mutable_compute_infer(), compute_);
  // npukd's compute span covers copy-in, run and copy-out; Triton's
  // compute_input/output are reported with their counts and zero time.
  set(s->mutable_compute_input(), Duration{compute_.count, 0});
  set(s->mutable_compute_output(), Duration{compute_.count, 0});
  for (const auto& [size, stat] : batch_stats_) {
    auto* b = out->add_batch_stats();
    b->set_batch_size(size);
    set(b->mutable_compute_infer(), stat.compute_infer);
    set(b->mutable_compute_input(), Duration{stat.compute_infer.count, 0});
    set(b->mutable_compute_output(), Duration{stat.compute_infer.count, 0});
  }
}

ModelStats::Totals ModelStats::totals() const {
  absl::MutexLock lock(&mu_);
  Totals t;
  t.success = success_.count;
  for (int i = 0; i < 4; ++i) t.failure[i] = failures_[i];
  t.inference_count = inference_count_;
  t.execution_count = execution_count_;
  t.request_ns = success_.ns + fail_.ns;
  t.queue_ns = queue_.ns;
  t.compute_ns = compute_.ns;
  for (const auto& [size, stat] : batch_stats_) {
    t.batch_runs[size] = stat.compute_infer.count;
  }
  return t;
}

}  // namespace npuk
