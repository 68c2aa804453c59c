// Shared by the reliability and load tests: request builders for the
// models, their references (the registry's KernelSpec::reference), and small
// probes of a running npukd (model statistics, grpc.health.v1, ModelReady,
// Prometheus metrics, resident memory). Everything talks to the daemon over its
// real gRPC edge.
#ifndef NPUK_TESTS_RELIABILITY_REQUESTS_H_
#define NPUK_TESTS_RELIABILITY_REQUESTS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace npuk::testing {

using InferStub = inference::GRPCInferenceService::Stub;

// A speech-like mel input: a sine plus noise, `frames` frames of 400.
std::vector<int16_t> RandomAudio(std::mt19937& rng, size_t frames);
// Gaussian int8 values, saturated.
std::vector<int8_t> RandomInt8(std::mt19937& rng, size_t n, double sigma);

inference::ModelInferRequest MelRequest(const std::vector<int16_t>& audio);
// The bytes npukd must return for `audio` (the mel kernel's reference).
std::string MelReference(const std::vector<int16_t>& audio);

inference::ModelInferRequest AttentionRequest(const std::vector<int8_t>& q,
                                              const std::vector<int8_t>& k,
                                              const std::vector<int8_t>& v,
                                              double score_scale);
std::string AttentionReference(const std::vector<int8_t>& q,
                               const std::vector<int8_t>& k,
                               const std::vector<int8_t>& v,
                               double score_scale);

// `blocks` is N * 4096 bytes; passthrough returns exactly these bytes.
inference::ModelInferRequest PassthroughRequest(
    const std::vector<int8_t>& blocks);

// A request with its expected output, ready to send many times.
struct Sample {
  inference::ModelInferRequest request;
  std::string expected;
  size_t items = 0;
};
Sample MelSample(std::mt19937& rng, size_t frames);
Sample AttentionSample(std::mt19937& rng, size_t tiles);
Sample PassthroughSample(std::mt19937& rng, size_t blocks);

// True when some item (80-byte mel frame or 4096-byte tile) of `got` is all
// zero while the same item of `expected` is not: the silent failure the
// daemon must never let through.
bool HasFalseZeroItem(const std::string& got, const std::string& expected,
                      size_t item_bytes);

grpc::Status Infer(InferStub& stub, const inference::ModelInferRequest& r,
                   inference::ModelInferResponse* resp,
                   int deadline_ms = 30000);

inference::ModelStatistics Stats(InferStub& stub, const std::string& model);
// ModelReady; nullopt when the call itself failed.
std::optional<bool> ModelReady(InferStub& stub, const std::string& model);

// grpc.health.v1 Check on `service` ("" = the server): "SERVING",
// "NOT_SERVING", ... or "error: <status>" when the call failed.
std::string HealthCheck(grpc::Channel& channel, const std::string& service);

// Polls until ModelReady and the health service both report `serving` for
// `model`, at most `timeout_ms`. Returns whether they did.
bool WaitForServing(grpc::Channel& channel, const std::string& model,
                    bool serving, int timeout_ms);

// The metrics port npukd logged ("metrics on ... (port N)"); waits up to
// 5 s for the line. -1 if not found.
int MetricsPortFromLog(const std::string& log_path);
// The response to GET `path` from 127.0.0.1:port (HTTP/1.0), each socket
// operation bounded by `timeout_s`, at most `max_bytes`; empty on failure.
std::string HttpGet(int port, const std::string& path, int timeout_s = 5,
                    size_t max_bytes = 4 << 20);
// GET /metrics from 127.0.0.1:port (HTTP/1.0); empty on failure.
std::string ScrapeMetrics(int port);
// The value of `family{model="<model>",...}` in Prometheus text; -1 if absent.
double MetricValue(const std::string& text, const std::string& family,
                   const std::string& model);

// VmRSS of `pid` in kB from /proc/<pid>/status; -1 if unreadable.
long ResidentKb(pid_t pid);

// The backends every build serves: cpu and npu-sim (xrt needs hardware).
std::vector<std::string> Backends();
// gtest-friendly parameter name ("npu-sim" -> "npu_sim").
std::string BackendName(const std::string& backend);

}  // namespace npuk::testing

#endif  // NPUK_TESTS_RELIABILITY_REQUESTS_H_
