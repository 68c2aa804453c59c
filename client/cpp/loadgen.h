// Closed-loop load generator over gRPC's callback API, shared by
// `npukctl bench` and bench/serving so both report the same numbers.
// `concurrency` calls are kept in flight; each completion starts the next.
// It sends any model's request unchanged; BuildRequest(RandomInputs(...))
// (model_info.h) makes one for a model from its metadata alone.
//
// "frames" in the field and JSON names below mean items, whatever the
// model's unit is (frames, tiles, blocks); the names are kept because
// scripts read them.
#ifndef NPUK_CLIENT_CPP_LOADGEN_H_
#define NPUK_CLIENT_CPP_LOADGEN_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc_service.pb.h"

namespace npuk::loadgen {

struct Spec {
  std::string target;  // unix:PATH or HOST:PORT; "" = default socket
  inference::ModelInferRequest request;  // sent unchanged by every call
  int64_t frames_per_request = 1;        // items; for items/s only
  int concurrency = 1;
  // Separate connections the calls are spread over.
  int channels = 1;
  // Calls are measured from warmup on. The run ends after `count` measured
  // calls when count > 0, else after `duration` of measurement.
  absl::Duration warmup = absl::Milliseconds(500);
  absl::Duration duration = absl::Seconds(5);
  int64_t count = 0;
  absl::Duration timeout = absl::Seconds(10);  // per call
};

struct Report {
  int64_t requests = 0;  // measured, successful
  int64_t errors = 0;    // measured, failed
  std::string first_error;
  absl::Duration elapsed;
  double requests_per_s = 0;
  double frames_per_s = 0;
  // Client-observed round trip of successful calls.
  absl::Duration p50, p90, p99, mean, max;
  // Means of the daemon's response parameters (zero against a server that
  // sends none, e.g. the echo server).
  double mean_batch_frames = 0;
  absl::Duration mean_queue, mean_compute, mean_server;
};

struct Progress {
  int64_t completed = 0;  // including warmup
  int64_t errors = 0;
  absl::Duration elapsed;
};

// Runs the load and blocks until every call has finished. `progress` is
// called about once a second from the calling thread. Fails when the target
// is malformed or every measured call failed (with the first error).
absl::StatusOr<Report> Run(const Spec& spec,
                           absl::FunctionRef<void(const Progress&)> progress);

std::string FormatText(const Spec& spec, const Report& report);
std::string FormatJson(const Spec& spec, const Report& report);

}  // namespace npuk::loadgen

#endif  // NPUK_CLIENT_CPP_LOADGEN_H_
