// Per-model health from canaries: a golden input sent through the real
// Batcher (and so the real device path), its output compared byte for byte
// with the golden output. A model is SERVING only while its canary passes.
//
// Usage (main.cc); construction order matters:
//   HealthMonitor monitor({.interval = config_interval});
//   ZeroGuard guard(&monitor);              // the batchers' RunVerifier
//   for (const KernelSpec* spec : AllKernels()) {
//     auto b = std::make_unique<Batcher>(*spec, ..., &guard, obs);
//     monitor.AddModel(b.get(), GoldenCanary(*spec));
//   }
//   monitor.AddObserver(...);               // health service, systemd, ...
//   absl::Status first = monitor.RunInitialCanaries();  // blocks; log it
//   monitor.Start();                        // interval thread
//   ... serve; IsServing(model) answers ServerReady/ModelReady ...
//   monitor.Stop();                         // before the batchers drain
// Destroy the batchers before the guard and the monitor.
//
// Thread safety: all public methods are thread-safe. Observers are called
// without internal locks held, one call at a time, in state order.
#ifndef NPUK_SERVER_HEALTH_HEALTH_MONITOR_H_
#define NPUK_SERVER_HEALTH_HEALTH_MONITOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kernels/registry/kernel_spec.h"
#include "server/batching/batcher.h"
#include "server/device/device.h"

namespace npuk {

// A known input and its exact expected output, in the batcher's planar task
// layout (batcher.h: kernel->plane_count() planes, the parameter plane
// last). The model it checks is kernel->name.
struct Canary {
  const KernelSpec* kernel = nullptr;
  size_t items = 0;
  std::vector<std::vector<uint8_t>> planes;
  std::vector<uint8_t> expected;  // items * kernel->output_bytes()
};

// The kernel's golden vectors (KernelSpec::golden, device argument bytes)
// as a canary. Defined in target npuk_health.
Canary GoldenCanary(const KernelSpec& kernel);

struct HealthMonitorOptions {
  // Every model's canary runs this often.
  absl::Duration interval = absl::Seconds(5);
  // A canary that has not completed after this long fails (and marks the
  // device as not answering for that model).
  absl::Duration canary_timeout = absl::Seconds(3);
  // The device "answers" while every model completed a device run (canary
  // or user request) within this window. A run that returns a wrong result
  // answers; one that fails UNAVAILABLE (device error or timeout), misses
  // its deadline or never returns does not. Zero = 2 * interval +
  // canary_timeout, so one slow canary never stops the watchdog.
  absl::Duration answer_window = absl::ZeroDuration();
};

struct ModelHealth {
  std::string model;       // the model (kernel) name
  bool serving = false;    // false until the first canary passed
  std::string reason;      // why not serving; empty while serving
  absl::Time last_canary;  // when the last canary finished (InfinitePast)
  bool last_canary_ok = false;
};

struct HealthSnapshot {
  std::vector<ModelHealth> models;  // in AddModel order
  bool all_serving = false;         // every model serving (and non-empty)
  bool device_answers = false;      // see HealthMonitorOptions::answer_window
};

class HealthMonitor {
 public:
  using Observer = std::function<void(const HealthSnapshot&)>;

  explicit HealthMonitor(HealthMonitorOptions options = {});
  // Stop()s.
  ~HealthMonitor();
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Registers model canary.kernel->name, checked with `canary` through
  // `batcher` (not owned; must outlive Stop()).
  // REQUIRES: before RunInitialCanaries(); canary.kernel set.
  void AddModel(Batcher* batcher, Canary canary);
  // Called on every change of any model's state or of device_answers, and
  // once with the current state when added.
  void AddObserver(Observer observer);

  // Runs every model's canary once, concurrently, and waits for them (at
  // most canary_timeout). OK when all passed; otherwise an UNAVAILABLE
  // status naming each failing model and why. Either way states are set.
  absl::Status RunInitialCanaries();

  // Starts the interval thread; Stop() joins it. Idempotent.
  void Start();
  void Stop();

  // A device run was seen to produce a wrong result outside a canary (the
  // zero guard): the model goes NOT_SERVING at once and a canary runs at
  // once to confirm or to recover.
  // Unknown model names are ignored.
  void ReportFault(std::string_view model, const absl::Status& why);
  // A device run of `model` completed (any result): evidence the device
  // answers.
  void NoteDeviceAnswered(std::string_view model);

  // The daemon cannot accept new connections (server/rpc/listener.h, e.g.
  // out of file descriptors): while `reason` is non-empty every model reads
  // NOT_SERVING with that reason, whatever its canary says; "" clears it.
  // Observers see the change at once.
  void SetAcceptFault(std::string reason);

  bool IsServing(std::string_view model) const;  // false for unknown names
  bool AllServing() const;
  bool DeviceAnswers() const;
  HealthSnapshot Snapshot() const;
  std::vector<std::string> model_names() const;

 private:
  struct Call;
  struct Model {
    Batcher* batcher = nullptr;
    std::shared_ptr<const Canary> canary;
    std::string name;  // its key in models_
    bool serving = false;
    std::string reason;
    absl::Time last_canary = absl::InfinitePast();
    bool last_canary_ok = false;
    absl::Time last_answer = absl::InfinitePast();
    bool triggered = false;
    // The canary in flight, if any; a hung one is not re-submitted.
    std::shared_ptr<Call> in_flight;
  };

  // Submits canaries for `models` and waits for them; updates states.
  void RunCanaries(const std::vector<std::string>& models);
  void Loop();
  void Publish();
  HealthSnapshot SnapshotLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DeviceAnswersLocked(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HealthMonitorOptions options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Model, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // AddModel order
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool last_answers_ ABSL_GUARDED_BY(mu_) = false;
  std::string accept_fault_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;

  // Serialises observer calls so they see snapshots in order.
  absl::Mutex publish_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<Observer> observers_ ABSL_GUARDED_BY(publish_mu_);
};

}  // namespace npuk

#endif  // NPUK_SERVER_HEALTH_HEALTH_MONITOR_H_
