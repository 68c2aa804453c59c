// The zero guard: the batchers' RunVerifier. Catches the failure that sank
// the prior attempt, a device run that "completes" but leaves its output all
// zeros, before a client can see it.
//
// Every output item (KernelSpec::unit) that is all zero is recomputed with
// the kernel's reference (ReferenceItem). An all-zero result can be true
// (zero input through a linear kernel), so only a disagreement counts: the
// task fails with INTERNAL and the health monitor marks the model
// NOT_SERVING and runs a canary at once. Non-zero outputs cost one scan.
//
// Usage: construct before the batchers and pass it to each of them
// (Batcher(kernel, options, executors, &guard, observer)); it must outlive
// them. Thread safety: Verify may be called concurrently from every
// dispatcher thread.
#ifndef NPUK_SERVER_HEALTH_ZERO_GUARD_H_
#define NPUK_SERVER_HEALTH_ZERO_GUARD_H_

#include <atomic>
#include <cstdint>

#include "absl/status/status.h"
#include "server/batching/batcher.h"
#include "server/device/device.h"
#include "server/health/health_monitor.h"

namespace npuk {

class ZeroGuard : public RunVerifier {
 public:
  // `monitor` may be null (then nothing is reported); not owned.
  explicit ZeroGuard(HealthMonitor* monitor) : monitor_(monitor) {}

  // OK unless an all-zero item disagrees with the reference. Also tells the
  // monitor the device answered (for the systemd watchdog). Canary tasks
  // are checked but not reported: the canary's own verdict decides.
  absl::Status Verify(const KernelSpec& kernel, const InferTask& task,
                      const uint8_t* output) override;

  // Tasks failed so far (for tests and metrics).
  uint64_t caught() const { return caught_.load(); }

 private:
  HealthMonitor* const monitor_;
  std::atomic<uint64_t> caught_{0};
};

}  // namespace npuk

#endif  // NPUK_SERVER_HEALTH_ZERO_GUARD_H_
