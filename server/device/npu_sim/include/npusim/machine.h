// The simulated NPU behind the npu-sim XRT headers: its latency model,
// fault switches and counters. Not part of XRT; only the npu-sim device
// factory, tests and benchmarks include this.
//
// Every xrt::device opened on npu-sim is its own simulated NPU: it owns a
// Machine (shared by copies of the handle and by everything made on it,
// BOs, contexts, runs), so two devices in one process, e.g. two tests or
// two daemons' worth of fixtures, never see each other's faults, settings,
// counters or hardware contexts.
#ifndef NPUSIM_NPUSIM_MACHINE_H_
#define NPUSIM_NPUSIM_MACHINE_H_

#include <cstdint>
#include <deque>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace npusim {

struct Settings {
  absl::Duration run_latency = absl::Microseconds(110);
  // Each run after the first in an xrt::runlist (cmd-chain).
  absl::Duration runlist_run_latency = absl::Microseconds(28);
  uint64_t dma_bytes_per_s = 8000ull * 1000 * 1000;
  // Sleep for modelled time (true) or only account it (false).
  bool realtime = true;
  // How long a hung run takes to be reported when waited on without a
  // timeout: the amdxdna watchdog (reference/xrt.md §2, default 2 s).
  absl::Duration watchdog = absl::Seconds(2);
};

enum class FaultKind {
  kZeros,    // run COMPLETED, output all zero
  kGarbage,  // run COMPLETED, output random bytes
  kTimeout,  // run never finishes: wait(timeout) returns TIMEOUT
  kError,    // run ends in ERT_CMD_STATE_ERROR, output untouched
  kSlow,     // run takes `extra` longer
};

struct Fault {
  FaultKind kind = FaultKind::kZeros;
  uint32_t runs = 1;  // how many upcoming runs it hits; 0 = every run
  absl::Duration extra = absl::Milliseconds(5);  // kSlow only
};

struct Stats {
  uint64_t runs = 0;           // runs started (incl. in runlists)
  uint64_t runs_executed = 0;  // runs whose instruction stream ran
  uint64_t runlist_runs = 0;
  uint64_t items = 0;              // items the core processed
  uint64_t bytes_synced = 0;       // host<->device sync traffic
  absl::Duration modelled_device;  // run latency + DMA, summed
  absl::Duration modelled_sync;    // sync traffic at dma bandwidth
};

// One simulated device.
class Machine {
 public:
  void Configure(const Settings& settings) ABSL_LOCKS_EXCLUDED(mu_);
  Settings settings() const ABSL_LOCKS_EXCLUDED(mu_);

  void InjectFault(const Fault& fault) ABSL_LOCKS_EXCLUDED(mu_);
  void ClearFaults() ABSL_LOCKS_EXCLUDED(mu_);
  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  void ResetStats() ABSL_LOCKS_EXCLUDED(mu_);

  // Used by the XRT stand-in.
  bool TakeFault(Fault* fault) ABSL_LOCKS_EXCLUDED(mu_);
  void Account(const Stats& delta) ABSL_LOCKS_EXCLUDED(mu_);
  // Phoenix supports 6 concurrent hardware contexts (reference/xrt.md §2).
  bool AcquireContext() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseContext() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  Settings settings_ ABSL_GUARDED_BY(mu_);
  std::deque<Fault> faults_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  int contexts_ ABSL_GUARDED_BY(mu_) = 0;
};

inline constexpr int kMaxContexts = 6;

}  // namespace npusim

namespace xrt {
inline namespace npusim {
class device;
}  // namespace npusim
}  // namespace xrt

namespace npusim {

// The simulated NPU `device` runs on. REQUIRES: `device` is open (not a
// default-constructed handle).
std::shared_ptr<Machine> MachineOf(const xrt::device& device);

}  // namespace npusim

#endif  // NPUSIM_NPUSIM_MACHINE_H_
