#include "server/telemetry/prometheus.h"

#include "absl/strings/str_cat.h"

namespace npuk {
namespace {

constexpr const char* kReasons[] = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};

// Batch-size histogram buckets: powers of two up to this many items per
// run; larger runs count in +Inf only.
constexpr uint64_t kLargestBucket = uint64_t{1} << 12;

void Family(std::string& out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                  type, "\n");
}

std::string Labels(const ModelStats& s) {
  return absl::StrCat("model=\"", s.model(), "\",version=\"1\"");
}

}  // namespace

std::string RenderPrometheus(const std::vector<ModelMetricsView>& models) {
  std::vector<ModelStats::Totals> totals;
  totals.reserve(models.size());
  for (const auto& m : models) totals.push_back(m.stats->totals());

  std::string out;
  auto counter = [&](const char* name, const char* help, auto value) {
    Family(out, name, "counter", help);
    for (size_t i = 0; i < models.size(); ++i) {
      absl::StrAppend(&out, name, "{", Labels(*models[i].stats), "} ",
                      value(totals[i]), "\n");
    }
  };
  counter("npuk_inference_request_success", "Successful inference requests",
          [](const ModelStats::Totals& t) { return t.success; });
  Family(out, "npuk_inference_request_failure", "counter",
         "Failed inference requests by reason");
  for (size_t i = 0; i < models.size(); ++i) {
    for (int r = 0; r < 4; ++r) {
      absl::StrAppend(&out, "npuk_inference_request_failure{",
                      Labels(*models[i].stats), ",reason=\"", kReasons[r],
                      "\"} ", totals[i].failure[r], "\n");
    }
  }
  counter("npuk_inference_count",
          "Items inferred, in the model's unit (ModelMetadata)",
          [](const ModelStats::Totals& t) { return t.inference_count; });
  counter("npuk_inference_exec_count", "Device runs",
          [](const ModelStats::Totals& t) { return t.execution_count; });
  counter("npuk_inference_request_duration_us",
          "Cumulative end-to-end server time of requests",
          [](const ModelStats::Totals& t) { return t.request_ns / 1000; });
  counter("npuk_inference_queue_duration_us",
          "Cumulative time requests waited in the queue",
          [](const ModelStats::Totals& t) { return t.queue_ns / 1000; });
  counter("npuk_inference_compute_infer_duration_us",
          "Cumulative device time (copy in, run, copy out) of requests",
          [](const ModelStats::Totals& t) { return t.compute_ns / 1000; });

  Family(out, "npuk_inference_pending_request_count", "gauge",
         "Requests waiting in the queue");
  for (const auto& m : models) {
    absl::StrAppend(&out, "npuk_inference_pending_request_count{",
                    Labels(*m.stats), "} ", m.pending_requests, "\n");
  }
  Family(out, "npuk_model_serving", "gauge",
         "1 while the model's canary passes, else 0");
  for (const auto& m : models) {
    absl::StrAppend(&out, "npuk_model_serving{", Labels(*m.stats), "} ",
                    m.serving ? 1 : 0, "\n");
  }

  Family(out, "npuk_inference_batch_size", "histogram", "Items per device run");
  for (size_t i = 0; i < models.size(); ++i) {
    uint64_t cumulative = 0, sum = 0;
    auto it = totals[i].batch_runs.begin();
    for (uint64_t le = 1; le <= kLargestBucket; le *= 2) {
      for (; it != totals[i].batch_runs.end() && it->first <= le; ++it) {
        cumulative += it->second;
        sum += it->first * it->second;
      }
      absl::StrAppend(&out, "npuk_inference_batch_size_bucket{",
                      Labels(*models[i].stats), ",le=\"", le, "\"} ",
                      cumulative, "\n");
    }
    for (; it != totals[i].batch_runs.end(); ++it) {
      cumulative += it->second;
      sum += it->first * it->second;
    }
    absl::StrAppend(&out, "npuk_inference_batch_size_bucket{",
                    Labels(*models[i].stats), ",le=\"+Inf\"} ", cumulative,
                    "\n", "npuk_inference_batch_size_sum{",
                    Labels(*models[i].stats), "} ", sum, "\n",
                    "npuk_inference_batch_size_count{",
                    Labels(*models[i].stats), "} ", cumulative, "\n");
  }
  return out;
}

}  // namespace npuk
