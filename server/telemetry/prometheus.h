// Prometheus text exposition of the per-model statistics, with names after
// Triton's nv_inference_* family (npuk_inference_*).
#ifndef NPUK_SERVER_TELEMETRY_PROMETHEUS_H_
#define NPUK_SERVER_TELEMETRY_PROMETHEUS_H_

#include <string>
#include <vector>

#include "server/telemetry/model_stats.h"

namespace npuk {

struct ModelMetricsView {
  const ModelStats* stats;
  size_t pending_requests;
  bool serving;
};

std::string RenderPrometheus(const std::vector<ModelMetricsView>& models);

}  // namespace npuk

#endif  // NPUK_SERVER_TELEMETRY_PROMETHEUS_H_
