// Prometheus text exposition (format 0.0.4) of the per-model statistics,
// the process and the build. Names follow Prometheus conventions (counters
// end in _total, times in seconds, sizes in bytes) so that
// `promtool check metrics` passes; docs/METRICS.md lists every metric and
// its Triton counterpart (nv_inference_*).
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

// The per-model families, then RenderProcessMetrics() and
// RenderBuildInfo(): the whole /metrics body.
std::string RenderPrometheus(const std::vector<ModelMetricsView>& models);

// The standard process_* families (CPU time, resident and virtual memory,
// open and maximum file descriptors, start time) of this process, read from
// /proc/self. A figure that cannot be read is left out, never made up.
std::string RenderProcessMetrics();

// npukd_build_info{version="<project version>"} 1.
std::string RenderBuildInfo();

}  // namespace npuk

#endif  // NPUK_SERVER_TELEMETRY_PROMETHEUS_H_
