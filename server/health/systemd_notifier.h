// systemd integration (Type=notify) with libsystemd's sd_notify:
//   READY=1     once, when every model's canary has passed (after
//               ReadyWhenServing()),
//   STATUS=     every model's state, whenever it changes,
//   WATCHDOG=1  every WatchdogSec/2, but only while the device answers
//               (HealthMonitor::DeviceAnswers), so a hung NPU gets the
//               service restarted by systemd instead of queueing forever,
//   STOPPING=1  when draining starts (call Stopping()).
// Everything is a no-op when NOTIFY_SOCKET is unset (not under systemd).
//
// Usage (main.cc):
//   SystemdNotifier systemd(&monitor);  // after monitor.AddModel()s
//   systemd.Start();                    // STATUS= observer + watchdog thread
//   monitor.RunInitialCanaries();       // log a failure, keep going
//   monitor.Start();
//   systemd.ReadyWhenServing(address);  // READY=1 now or once all pass
//   ... SIGTERM: systemd.Stopping(); drain ...
//   systemd.Stop();                     // before the monitor is destroyed
// READY=1 is withheld while a start-up canary fails: if the NPU never
// passes, the unit fails its TimeoutStartSec (and Restart= retries) rather
// than report a broken device as up.
//
// Thread safety: every method may be called from any thread.
#ifndef NPUK_SERVER_HEALTH_SYSTEMD_NOTIFIER_H_
#define NPUK_SERVER_HEALTH_SYSTEMD_NOTIFIER_H_

#include <string>
#include <string_view>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/health/health_monitor.h"

namespace npuk {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID now. `monitor` is not
  // owned and must outlive Stop().
  explicit SystemdNotifier(HealthMonitor* monitor);
  ~SystemdNotifier();  // Stop()s.
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return enabled_; }
  // Zero when systemd asked for no watchdog.
  absl::Duration watchdog_interval() const { return watchdog_; }

  // Registers the STATUS= observer and starts the watchdog thread.
  void Start();
  void Stop();

  // Sends READY=1 (with STATUS= naming `address`) as soon as every model is
  // SERVING: at once if they are, else on the first snapshot where they
  // are. Idempotent; READY=1 is sent at most once.
  void ReadyWhenServing(std::string_view address);
  // STOPPING=1; STATUS= says the daemon is draining. Idempotent.
  void Stopping();

  // The STATUS= text for a snapshot: each model's name and state, e.g.
  // "<model> SERVING, <model> NOT_SERVING (canary ...)"; public for tests.
  static std::string StatusLine(const HealthSnapshot& snapshot);

 private:
  void Notify(const std::string& message);
  void WatchdogLoop();
  void OnHealth(const HealthSnapshot& snapshot);

  HealthMonitor* const monitor_;
  const bool enabled_;
  absl::Duration watchdog_;

  absl::Mutex mu_;
  bool ready_armed_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_thread_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool petting_ ABSL_GUARDED_BY(mu_) = true;
  std::string address_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_HEALTH_SYSTEMD_NOTIFIER_H_
