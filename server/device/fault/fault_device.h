// Fault injection for drills and tests: a Device decorator that works over
// every backend (cpu, npu-sim, xrt). Off unless --fault is given; when on it
// logs a warning at start and for every injected fault (rate-limited).
//
// Usage (main.cc):
//   NPUK_ASSIGN_OR_RETURN(std::vector<FaultSpec> specs,
//                         ParseFaultSpecs(flag));
//   FaultController faults;                      // outlives the device
//   device = WithFaults(std::move(device), specs, &faults);
//   ... SIGUSR2 (drill) -> faults.ToggleArmed() from main.cc's sigwait
//   thread, or
//   faults.Set({...}) / faults.Clear() from any thread.
//
// Wrap with a controller even when no --fault is given only if run-time
// drills must be possible; WithFaults(device, {}, nullptr) returns `device`
// unchanged, so production pays nothing.
#ifndef NPUK_SERVER_DEVICE_FAULT_FAULT_DEVICE_H_
#define NPUK_SERVER_DEVICE_FAULT_FAULT_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/device/device.h"

namespace npuk {

struct FaultSpec {
  enum Kind {
    kZeros,    // Run returns OK, output left all zero (the prior attempt)
    kGarbage,  // Run returns OK, output random bytes
    kError,    // Run returns UNAVAILABLE at once
    kTimeout,  // Run sleeps FaultOptions::run_timeout, then UNAVAILABLE
    kSlow,     // Run succeeds after FaultOptions::slow_latency extra
    kHang,     // Run blocks until the fault is cleared or disarmed
  };
  // A registered model (kernels/registry/registry.h), or "*" for every one.
  std::string model;
  Kind kind = kZeros;
  // Fraction of runs affected, in (0, 1].
  double rate = 1.0;
};

// "MODEL:KIND[:RATE]", e.g. "*:slow", "MODEL:zeros", "MODEL:error:0.25".
// MODEL is checked against the kernel registry. Errors (INVALID_ARGUMENT)
// quote the spec and list the valid values.
absl::StatusOr<FaultSpec> ParseFaultSpec(std::string_view spec);
// Comma-separated list of the above; empty text gives an empty list.
absl::StatusOr<std::vector<FaultSpec>> ParseFaultSpecs(std::string_view text);
// Inverse of ParseFaultSpec, for logs and STATUS=: "MODEL:zeros:1".
std::string FaultSpecToString(const FaultSpec& spec);
std::string_view FaultKindName(FaultSpec::Kind kind);

struct FaultOptions {
  // How long a kTimeout run waits before failing (the xrt run timeout).
  absl::Duration run_timeout = absl::Seconds(2);
  // Latency a kSlow run adds.
  absl::Duration slow_latency = absl::Milliseconds(50);
  // Seed for kGarbage bytes and for rate < 1 draws; 0 = nondeterministic.
  uint64_t seed = 0;
};

// The faults in force, shared by every executor of a decorated device and
// flipped at run time by the daemon (drills) or by tests.
//
// Thread safety: every method may be called from any thread.
// ToggleArmed() and SetArmed() are also async-signal-safe (they only touch a
// lock-free atomic), so a SIGUSR2 handler may call them directly; the change
// is logged by the next run that observes it.
class FaultController {
 public:
  FaultController() = default;
  FaultController(const FaultController&) = delete;
  FaultController& operator=(const FaultController&) = delete;

  // Replaces the configured faults (and arms them).
  void Set(std::vector<FaultSpec> specs);
  // Removes every fault; hanging runs return.
  void Clear();

  // Armed faults are injected; disarmed ones are kept for re-arming. A drill
  // toggles between the two without losing the --fault list.
  void SetArmed(bool armed);
  // Returns the new state.
  bool ToggleArmed();
  bool armed() const;

  // The fault for the model named `model` while armed, else nullopt. A
  // spec naming the model wins over "*".
  std::optional<FaultSpec> For(std::string_view model) const;
  std::vector<FaultSpec> specs() const;

  // Blocks while `model` has an armed kHang fault, like a device that never
  // completes: only Clear(), Set() without it or disarming ends the wait.
  void WaitWhileHung(std::string_view model) const;

 private:
  mutable absl::Mutex mu_;
  std::vector<FaultSpec> specs_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> armed_{true};
  static_assert(std::atomic<bool>::is_always_lock_free,
                "ToggleArmed must be async-signal-safe");
};

// Decorates `device`: every executor it creates consults `controller` on
// each Run. `specs` are installed into the controller (replacing what it
// held). With no specs and no controller, returns `device` itself.
// `controller` (when not null) must outlive the returned device; when null a
// private controller holding `specs` is used.
std::unique_ptr<Device> WithFaults(std::unique_ptr<Device> device,
                                   std::vector<FaultSpec> specs,
                                   FaultController* controller,
                                   FaultOptions options = {});

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_FAULT_FAULT_DEVICE_H_
