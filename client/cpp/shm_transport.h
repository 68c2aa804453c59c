// Triton's system shared-memory extension on the client side, used by
// npuk::Client when the daemon is on the same host (unix socket or
// loopback): inputs are written into POSIX shared-memory objects the client
// creates (mode 0600), registered once with the daemon, and the daemon
// writes the output there too; the transport puts the output bytes back
// into the response, so callers see exactly what plain gRPC returns.
//
// Whatever does not fit goes over plain gRPC: a daemon that refuses the
// registration (another user, host or mount namespace; then plain from
// there on), typed contents, requests over kMaxRegionBytes, more than
// kMaxRegions calls at once, a region the daemon lost. Synchronous and
// asynchronous calls (Begin/End) share one pool of regions.
#ifndef NPUK_CLIENT_CPP_SHM_TRANSPORT_H_
#define NPUK_CLIENT_CPP_SHM_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace npuk {

// True for unix:/unix-abstract: targets and loopback HOST:PORT.
bool IsLocalTarget(absl::string_view target);
// False when $NPUK_SHM is 0, false, no or off.
bool SharedMemoryEnabledByEnv();

class ShmTransport {
 private:
  struct Region;

 public:
  static constexpr size_t kMinRegionBytes = size_t{1} << 20;
  static constexpr size_t kMaxRegionBytes = size_t{1} << 28;
  static constexpr size_t kMaxRegions = 8;

  // `stub` must outlive the transport; `timeout` bounds the register and
  // unregister calls.
  ShmTransport(inference::GRPCInferenceService::Stub* stub,
               absl::Duration timeout);
  // Unregisters every region, removes the objects and waits for the
  // unregistrations still running. No request may be in flight.
  ~ShmTransport();
  ShmTransport(const ShmTransport&) = delete;
  ShmTransport& operator=(const ShmTransport&) = delete;

  // Runs one ModelInfer: `call(request, response)` performs it with the
  // caller's context. Returns the call's status; the response holds the
  // outputs in raw_output_contents as plain gRPC would.
  using Call = absl::FunctionRef<grpc::Status(
      const inference::ModelInferRequest&, inference::ModelInferResponse*)>;
  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response, Call call);

  // The same in two steps, for asynchronous calls (thread-safe):
  //   auto lease = t.Begin(request);   // may block once: registration
  //   send lease ? lease->request : request, then when it ends with `s`:
  //   if (lease && t.End(*lease, s, &response)) resend `request` plainly.
  // A lease holds its region until End; a call that ended without the
  // daemon's answer (cancelled, past its deadline, connection lost) may
  // still be written into by the daemon, so End then retires the region
  // instead of lending it again.
  struct Lease {
    inference::ModelInferRequest request;  // what to send instead
    std::shared_ptr<Region> region;
    size_t out_offset = 0;
  };
  // Null when `request` goes plain (counted as a fallback).
  std::unique_ptr<Lease> Begin(const inference::ModelInferRequest& request);
  // Ends the shared-memory call: on success moves the output into
  // `response`. True when the caller must send the original request plainly
  // instead (the daemon lost the region or it was too small; `response` is
  // cleared). Never blocks.
  bool End(Lease& lease, const grpc::Status& status,
           inference::ModelInferResponse* response);

  bool active() const { return !disabled_.load(); }
  int64_t shm_requests() const { return shm_requests_.load(); }
  int64_t fallbacks() const { return fallbacks_.load(); }
  // Regions registered now, and how many of them are free (not lent).
  size_t regions() const;
  size_t free_regions() const;

 private:
  // A free region of at least `bytes`, registered; null when none can be had.
  std::shared_ptr<Region> Acquire(size_t bytes);
  void Release(std::shared_ptr<Region> region);
  // Takes `region` out of the pool and unregisters it without blocking.
  void Retire(const std::shared_ptr<Region>& region);
  void UnregisterAsync(std::shared_ptr<Region> region);
  void Unregister(const std::shared_ptr<Region>& region);
  // The model's only output name ("" when it has several or metadata fails).
  std::string OutputName(const std::string& model);

  inference::GRPCInferenceService::Stub* const stub_;
  const absl::Duration timeout_;
  std::atomic<bool> disabled_{false};
  std::atomic<int64_t> shm_requests_{0};
  std::atomic<int64_t> fallbacks_{0};

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<Region>> all_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Region>> free_ ABSL_GUARDED_BY(mu_);
  size_t creating_ ABSL_GUARDED_BY(mu_) = 0;  // slots being registered
  // Unregistrations in flight (UnregisterAsync); the destructor waits.
  struct Pending {
    absl::Mutex mu;
    int unregisters ABSL_GUARDED_BY(mu) = 0;
  };
  const std::shared_ptr<Pending> pending_ = std::make_shared<Pending>();
  std::map<std::string, std::string, std::less<>> output_names_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_SHM_TRANSPORT_H_
