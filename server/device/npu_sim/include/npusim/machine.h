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
#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace npusim {

struct Settings {
  // Host-visible latency of one lone xrt::run (launch + wait; xrt-smi on a
  // Phoenix 7640U).
  absl::Duration run_latency = absl::Microseconds(110);
  // Each run after the first in an xrt::runlist (cmd-chain).
  absl::Duration runlist_run_latency = absl::Microseconds(28);
  // The command floor: a hardware context executes one command at a time,
  // and back-to-back commands on it complete no faster than this apart
  // (~24k no-op commands/s pipelined on Phoenix Linux, amd/xdna-driver PR
  // #599). Commands of several executors on one context queue behind each
  // other.
  absl::Duration command_floor = absl::Microseconds(42);
  uint64_t dma_bytes_per_s = 8000ull * 1000 * 1000;
  // Sleep for modelled time (true) or only account it (false).
  bool realtime = true;
  // The driver's TDR: a command that never finishes is ended this long
  // after it started (amdxdna `tdr_timeout_ms`, default 2000): it gets
  // ERT_CMD_STATE_TIMEOUT, every command queued behind it on the context
  // ERT_CMD_STATE_ABORT (PR #580), and the context is restarted in place.
  // Without realtime, time passes for a hung command only while something
  // waits on it (or on a command queued behind it).
  absl::Duration watchdog = absl::Seconds(2);
  // Runtime autosuspend: the NPU suspends after this long without a command
  // or a new hardware context (AMDXDNA_AUTOSUSPEND_DELAY, 5000 ms;
  // InfiniteDuration = autosuspend_ms < 0, never), and the first command
  // after that pays `cold_start` (~135 ms measured, mlir-aie#2944).
  absl::Duration autosuspend = absl::Milliseconds(5000);
  absl::Duration cold_start = absl::Milliseconds(135);
  // Core compute, priced by the AIE2 cycle model (kernels/vec/
  // cycle_model.h) from the operation counts of the kernel code the cores
  // run: the vector kernels (true) or the scalar entries (false), items
  // split over the compute cores of the design the package was built from
  // (KernelSpec::design.cores x .columns: the layout is the design's, not a
  // setting). A run's core time overlaps its DMA (double-buffered
  // objectfifos): the run takes launch + max(DMA, compute) + one item's DMA
  // (pipeline fill).
  bool vector_kernels = true;
};

enum class FaultKind {
  kZeros,    // run COMPLETED, output all zero
  kGarbage,  // run COMPLETED, output random bytes
  kTimeout,  // run never finishes: wait(timeout) returns TIMEOUT until the
             // TDR (Settings::watchdog) ends it in ERT_CMD_STATE_TIMEOUT
  kError,    // run ends in ERT_CMD_STATE_ERROR, output untouched
  kSlow,     // run takes `extra` longer
  kCold,     // the NPU had autosuspended: the run pays Settings::cold_start
};

struct Fault {
  FaultKind kind = FaultKind::kZeros;
  uint32_t runs = 1;  // how many upcoming runs it hits; 0 = every run
  absl::Duration extra = absl::Milliseconds(5);  // kSlow only
  // Chance that a run is hit, in (0, 1]. Below 1 the fault stays in force
  // (`runs` counts only hits) and draws come from Machine::Seed's stream.
  double rate = 1.0;
};

struct Stats {
  uint64_t runs = 0;           // runs started (incl. in runlists)
  uint64_t runs_executed = 0;  // runs whose instruction stream ran
  uint64_t runlist_runs = 0;
  uint64_t items = 0;               // items the core processed
  uint64_t bytes_synced = 0;        // host<->device sync traffic
  absl::Duration modelled_device;   // run latency + DMA/compute, summed
  absl::Duration modelled_compute;  // core compute (cycle model), summed
  double compute_cycles = 0;        // per core, summed over runs
  absl::Duration modelled_sync;     // sync traffic at dma bandwidth
  uint64_t cold_starts = 0;         // commands that woke an autosuspended NPU
  uint64_t tdr_resets = 0;          // hung commands the TDR ended (TIMEOUT)
  uint64_t tdr_aborted = 0;         // commands queued behind one, ended ABORT
  uint64_t abort_refused = 0;       // run::abort() calls the driver refused
  uint64_t bank_copies = 0;  // BO arguments copied into the connected bank
  uint64_t max_queued = 0;   // most commands in flight on one context
};

// One simulated device.
class Machine {
 public:
  void Configure(const Settings& settings) ABSL_LOCKS_EXCLUDED(mu_);
  Settings settings() const ABSL_LOCKS_EXCLUDED(mu_);

  void InjectFault(const Fault& fault) ABSL_LOCKS_EXCLUDED(mu_);
  // Seeds the draws of faults with rate < 1 (default: fixed seed 1).
  void Seed(uint64_t seed) ABSL_LOCKS_EXCLUDED(mu_);
  void ClearFaults() ABSL_LOCKS_EXCLUDED(mu_);
  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  void ResetStats() ABSL_LOCKS_EXCLUDED(mu_);

  // Used by the XRT stand-in.
  bool TakeFault(Fault* fault) ABSL_LOCKS_EXCLUDED(mu_);
  void Account(const Stats& delta) ABSL_LOCKS_EXCLUDED(mu_);
  // Phoenix supports 6 concurrent hardware contexts (reference/xrt.md §2).
  // Creating one resumes the NPU.
  bool AcquireContext() ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseContext() ABSL_LOCKS_EXCLUDED(mu_);
  // A command starts at `now`: true when the NPU had autosuspended (idle
  // for Settings::autosuspend since it was last busy) or `force_cold`;
  // counts the cold start. The NPU then stays busy until `busy_until`.
  bool Wake(absl::Time now, bool force_cold) ABSL_LOCKS_EXCLUDED(mu_);
  void BusyUntil(absl::Time t) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  Settings settings_ ABSL_GUARDED_BY(mu_);
  std::deque<Fault> faults_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  int contexts_ ABSL_GUARDED_BY(mu_) = 0;
  // Opening the device resumes it.
  absl::Time busy_until_ ABSL_GUARDED_BY(mu_) = absl::Now();
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_){1};
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
