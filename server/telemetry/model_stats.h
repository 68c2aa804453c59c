// Per-model counters with Triton's semantics: inference_count counts items
// (the kernel's unit: KernelSpec::unit), execution_count counts device runs,
// durations are sums.
// Canary traffic is kept out of every user-facing figure.
#ifndef NPUK_SERVER_TELEMETRY_MODEL_STATS_H_
#define NPUK_SERVER_TELEMETRY_MODEL_STATS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc_service.pb.h"
#include "server/batching/batcher.h"

namespace npuk {

// Why a request failed, as Triton's nv_inference_request_failure{reason}.
enum class FailureReason { kRejected, kCanceled, kBackend, kOther };

// The reason a request that ended with `s` counts under: queue full
// (RESOURCE_EXHAUSTED) rejected, cancelled or past its deadline canceled,
// UNAVAILABLE or INTERNAL the backend, anything else other.
FailureReason FailureReasonOf(const absl::Status& s);

// Thread-safe.
class ModelStats : public BatchObserver {
 public:
  // `model` is the served model's name (KernelSpec::name): the label of
  // every series and the name in ModelStatistics.
  explicit ModelStats(std::string model) : model_(std::move(model)) {}

  void OnRun(const KernelSpec& kernel, size_t items, size_t user_items,
             absl::Duration compute, bool ok) override;

  void RecordSuccess(size_t items, absl::Duration queue, absl::Duration compute,
                     absl::Duration total);
  void RecordFailure(FailureReason reason, absl::Duration total);

  // Fills a Triton ModelStatistics message.
  void Snapshot(inference::ModelStatistics* out) const;

  // The counters RenderPrometheus exposes (prometheus.h), read at once.
  struct Totals {
    uint64_t success = 0, failure[4] = {0, 0, 0, 0};
    uint64_t inference_count = 0, execution_count = 0;
    uint64_t request_ns = 0, queue_ns = 0, compute_ns = 0;
    std::map<uint64_t, uint64_t> batch_runs;  // items per run -> runs
  };
  Totals totals() const;
  const std::string& model() const { return model_; }

 private:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
    void Add(absl::Duration d) {
      ++count;
      ns += static_cast<uint64_t>(absl::ToInt64Nanoseconds(d));
    }
  };
  struct BatchStat {
    Duration compute_infer;
  };

  const std::string model_;
  mutable absl::Mutex mu_;
  Duration success_ ABSL_GUARDED_BY(mu_);
  Duration fail_ ABSL_GUARDED_BY(mu_);
  Duration queue_ ABSL_GUARDED_BY(mu_);
  Duration compute_ ABSL_GUARDED_BY(mu_);
  uint64_t failures_[4] ABSL_GUARDED_BY(mu_) = {0, 0, 0, 0};
  uint64_t inference_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t execution_count_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_inference_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, BatchStat> batch_stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace npuk

#endif  // NPUK_SERVER_TELEMETRY_MODEL_STATS_H_
