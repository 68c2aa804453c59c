// The inference RPCs' reactors on raw messages: ModelInfer (unary) and
// ModelStreamInfer (bidirectional), with flow control for the stream.
//
// Both methods are registered raw (grpc::ByteBuffer in and out), so that
// parsing is ours: an unparseable request gets INVALID_ARGUMENT with a text
// that says so (on a stream: which request, by its index), not gRPC's bare
// status. Everything after parsing goes through InferenceService::StartInfer,
// the same path as before.
//
// Flow control: every stream counts the bytes it holds — twice the size of
// each request read and not yet answered (the request and its answer, never
// larger than the request), then each answer until it is written to the
// client — against a per-stream bound and a process-wide bound shared by all
// streams. While either is reached the stream issues no further read, so the
// client's writes are held back by HTTP/2 flow control instead of piling up
// in memory, and a request that arrives meanwhile is parked as received
// (not parsed, not started) until there is room; it reads again as its own
// answers are written (or, for the process bound, as any stream's are).
// A request is charged when it is admitted, against the bound checked in
// the same step, so a bound is passed by at most one request. A stream that
// already holds something may fill only half of the process bound; the other
// half is for streams that hold nothing, so clients that read their answers
// keep going while others sit at their bound. docs/RELIABILITY.md has the
// figures.
#ifndef NPUK_SERVER_RPC_STREAM_REACTOR_H_
#define NPUK_SERVER_RPC_STREAM_REACTOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpc_service.pb.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/server_callback.h"

namespace grpc {
class CallbackServerContext;
}  // namespace grpc

namespace npuk {

class InferenceService;

// Defaults of the config fields stream_max_bytes_in_flight and
// streams_max_bytes_in_flight.
inline constexpr int64_t kDefaultStreamBytesInFlight = int64_t{8} << 20;
inline constexpr int64_t kDefaultProcessStreamBytesInFlight = int64_t{32} << 20;

struct StreamLimits {
  int64_t per_stream = kDefaultStreamBytesInFlight;
  int64_t per_process = kDefaultProcessStreamBytesInFlight;
};

// Wakes a stream that paused on the process bound. Detached before the
// stream is destroyed, so a late wake-up is a no-op.
class StreamWaker {
 public:
  virtual ~StreamWaker() = default;
  virtual void Wake() = 0;
};

// Bytes held by all streams of the process, and the streams waiting for
// room under the bound.
class StreamBudget {
 public:
  explicit StreamBudget(int64_t limit) : limit_(limit) {}

  // Adds `delta` (negative to release). When usage is below the limit
  // afterwards, moves the waiting streams into `wake`: the caller wakes them
  // once it holds no lock.
  void Add(int64_t delta, std::vector<std::shared_ptr<StreamWaker>>* wake);
  // Adds `delta` if usage is below the limit (below half of it with
  // `reserve`) and returns true; otherwise returns false and `waker` is
  // woken the next time it is. Checked and charged at once, so the limit is
  // passed by at most one charge.
  bool TryCharge(int64_t delta, const std::shared_ptr<StreamWaker>& waker,
                 bool reserve);
  // True while usage is below the limit (below half of it with `reserve`:
  // for streams that already hold something); otherwise `waker` is woken
  // the next time it is.
  bool RoomOrWait(const std::shared_ptr<StreamWaker>& waker, bool reserve);

  int64_t used() const;
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  mutable absl::Mutex mu_;
  int64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<StreamWaker>> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<StreamWaker>> waiting_half_ ABSL_GUARDED_BY(mu_);
};

// Parses `bytes` (emptied on return, its memory released) into `request`.
// `what` names the message in the error text, e.g. "the ModelInfer request".
absl::Status ParseInferRequest(grpc::ByteBuffer* bytes,
                               inference::ModelInferRequest* request,
                               absl::string_view what);

grpc::ServerUnaryReactor* StartUnaryInfer(InferenceService* service,
                                          grpc::CallbackServerContext* ctx,
                                          const grpc::ByteBuffer* request,
                                          grpc::ByteBuffer* response);

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StartStreamInfer(
    InferenceService* service, grpc::CallbackServerContext* ctx,
    StreamBudget* budget, int64_t stream_limit);

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_STREAM_REACTOR_H_
