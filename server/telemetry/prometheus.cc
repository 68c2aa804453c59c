#include "server/telemetry/prometheus.h"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "npuk_version.h"

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

// A sample value in seconds from nanoseconds, without losing precision to
// a fixed number of decimals.
std::string Seconds(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9f", static_cast<double>(ns) / 1e9);
  return buf;
}

// Fields of /proc/self/stat after the command name (field 3 onwards, so
// index 0 is the state, field 3 in proc(5)).
std::optional<std::vector<std::string>> ProcSelfStat() {
  std::ifstream in("/proc/self/stat");
  if (!in.is_open()) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // The command name is in parentheses and may hold spaces.
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 > text.size()) {
    return std::nullopt;
  }
  return absl::StrSplit(text.substr(close + 2), ' ', absl::SkipEmpty());
}

// proc(5) field number N of /proc/self/stat as an integer.
std::optional<uint64_t> StatField(const std::vector<std::string>& fields,
                                  size_t n) {
  if (n < 3 || n - 3 >= fields.size()) return std::nullopt;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(fields[n - 3], &v)) return std::nullopt;
  return v;
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
  counter("npuk_inference_request_success_total",
          "Successful inference requests",
          [](const ModelStats::Totals& t) { return t.success; });
  Family(out, "npuk_inference_request_failure_total", "counter",
         "Failed inference requests by reason");
  for (size_t i = 0; i < models.size(); ++i) {
    for (int r = 0; r < 4; ++r) {
      absl::StrAppend(&out, "npuk_inference_request_failure_total{",
                      Labels(*models[i].stats), ",reason=\"", kReasons[r],
                      "\"} ", totals[i].failure[r], "\n");
    }
  }
  counter("npuk_inference_count_total",
          "Items inferred, in the model's unit (ModelMetadata)",
          [](const ModelStats::Totals& t) { return t.inference_count; });
  counter("npuk_inference_exec_count_total", "Device runs",
          [](const ModelStats::Totals& t) { return t.execution_count; });
  counter("npuk_inference_request_duration_seconds_total",
          "Cumulative end-to-end server time of requests, in seconds",
          [](const ModelStats::Totals& t) { return Seconds(t.request_ns); });
  counter("npuk_inference_queue_duration_seconds_total",
          "Cumulative time requests waited in the queue, in seconds",
          [](const ModelStats::Totals& t) { return Seconds(t.queue_ns); });
  counter("npuk_inference_compute_infer_duration_seconds_total",
          "Cumulative device time (copy in, run, copy out) of requests, in "
          "seconds",
          [](const ModelStats::Totals& t) { return Seconds(t.compute_ns); });

  Family(out, "npuk_inference_pending_requests", "gauge",
         "Requests waiting in the queue");
  for (const auto& m : models) {
    absl::StrAppend(&out, "npuk_inference_pending_requests{", Labels(*m.stats),
                    "} ", m.pending_requests, "\n");
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
  absl::StrAppend(&out, RenderProcessMetrics(), RenderBuildInfo());
  return out;
}

std::string RenderProcessMetrics() {
  std::string out;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::optional<std::vector<std::string>> stat = ProcSelfStat();
  if (stat.has_value() && ticks > 0) {
    // proc(5): 14 utime, 15 stime, 22 starttime (ticks after boot),
    // 23 vsize (bytes), 24 rss (pages).
    const auto utime = StatField(*stat, 14), stime = StatField(*stat, 15);
    if (utime && stime) {
      Family(out, "process_cpu_seconds_total", "counter",
             "User and system CPU time spent, in seconds");
      char buf[32];
      std::snprintf(
          buf, sizeof buf, "%.2f",
          static_cast<double>(*utime + *stime) / static_cast<double>(ticks));
      absl::StrAppend(&out, "process_cpu_seconds_total ", buf, "\n");
    }
    if (const auto vsize = StatField(*stat, 23)) {
      Family(out, "process_virtual_memory_bytes", "gauge",
             "Virtual memory size, in bytes");
      absl::StrAppend(&out, "process_virtual_memory_bytes ", *vsize, "\n");
    }
    if (const auto rss = StatField(*stat, 24); rss && page > 0) {
      Family(out, "process_resident_memory_bytes", "gauge",
             "Resident memory size, in bytes");
      absl::StrAppend(&out, "process_resident_memory_bytes ",
                      *rss * static_cast<uint64_t>(page), "\n");
    }
    // Wall-clock start = now - time since boot + start ticks after boot.
    // CLOCK_BOOTTIME instead of /proc/uptime, which ProcSubset=pid hides.
    timespec real{}, boot{};
    if (const auto start = StatField(*stat, 22);
        start && ::clock_gettime(CLOCK_REALTIME, &real) == 0 &&
        ::clock_gettime(CLOCK_BOOTTIME, &boot) == 0) {
      const double now = static_cast<double>(real.tv_sec) + real.tv_nsec / 1e9;
      const double up = static_cast<double>(boot.tv_sec) + boot.tv_nsec / 1e9;
      const double started =
          now - up + static_cast<double>(*start) / static_cast<double>(ticks);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.3f", started);
      Family(out, "process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch, in seconds");
      absl::StrAppend(&out, "process_start_time_seconds ", buf, "\n");
    }
  }
  std::error_code ec;
  size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++fds;
  }
  if (!ec) {
    Family(out, "process_open_fds", "gauge", "Open file descriptors");
    // The directory iterator's own descriptor is not counted.
    absl::StrAppend(&out, "process_open_fds ", fds > 0 ? fds - 1 : 0, "\n");
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Family(out, "process_max_fds", "gauge",
           "Maximum number of open file descriptors (RLIMIT_NOFILE)");
    absl::StrAppend(&out, "process_max_fds ", limit.rlim_cur, "\n");
  }
  return out;
}

std::string RenderBuildInfo() {
  std::string out;
  Family(out, "npukd_build_info", "gauge",
         "Always 1; the version label is the npukd release");
  absl::StrAppend(&out, "npukd_build_info{version=\"", kVersion, "\"} 1\n");
  return out;
}

}  // namespace npuk
