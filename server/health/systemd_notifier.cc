#include "server/health/systemd_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

bool NotifySocketSet() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

}  // namespace

SystemdNotifier::SystemdNotifier(HealthMonitor* monitor)
    : monitor_(monitor), enabled_(NotifySocketSet()) {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) {
    watchdog_ = absl::Microseconds(usec);
  }
}

SystemdNotifier::~SystemdNotifier() { Stop(); }

std::string SystemdNotifier::StatusLine(const HealthSnapshot& snapshot) {
  std::string line;
  for (const ModelHealth& m : snapshot.models) {
    if (!line.empty()) line += ", ";
    line +=
        fmt::format("{} {}", m.model, m.serving ? "SERVING" : "NOT_SERVING");
    if (!m.serving && !m.reason.empty()) line += fmt::format(" ({})", m.reason);
  }
  if (!snapshot.device_answers) line += "; device not answering";
  // STATUS= is one line.
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  return line;
}

void SystemdNotifier::Notify(const std::string& message) {
  if (!enabled_) return;
  const int r = sd_notify(0, message.c_str());
  if (r < 0) {
    spdlog::warn("systemd: sd_notify failed: {} (NOTIFY_SOCKET={})",
                 std::strerror(-r), std::getenv("NOTIFY_SOCKET"));
  }
}

void SystemdNotifier::Start() {
  if (!enabled_) return;
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  monitor_->AddObserver(
      [this](const HealthSnapshot& snapshot) { OnHealth(snapshot); });
  if (watchdog_ > absl::ZeroDuration()) {
    spdlog::info("systemd: watchdog every {}, petted while the device answers",
                 absl::FormatDuration(watchdog_));
    thread_ = std::thread([this] { WatchdogLoop(); });
  }
}

void SystemdNotifier::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_thread_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SystemdNotifier::OnHealth(const HealthSnapshot& snapshot) {
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (ready_armed_ && !ready_ && snapshot.all_serving) {
      ready_ = true;
      message = "READY=1\n";
      spdlog::info("systemd: every canary passed; READY=1");
    }
    message += ready_ ? fmt::format("STATUS=serving on {}: ", address_)
                      : "STATUS=starting (canaries): ";
  }
  Notify(message + StatusLine(snapshot));
}

void SystemdNotifier::ReadyWhenServing(std::string_view address) {
  if (!enabled_) return;
  {
    absl::MutexLock lock(&mu_);
    if (ready_armed_) return;
    ready_armed_ = true;
    address_ = std::string(address);
  }
  // The observer may already have seen the last change; re-evaluate now.
  OnHealth(monitor_->Snapshot());
}

void SystemdNotifier::Stopping() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  Notify("STOPPING=1\nSTATUS=draining: finishing accepted requests");
}

void SystemdNotifier::WatchdogLoop() {
  const absl::Duration period = watchdog_ / 2;
  while (true) {
    const bool answers = monitor_->DeviceAnswers();
    {
      absl::MutexLock lock(&mu_);
      if (answers != petting_) {
        if (answers) {
          spdlog::info("systemd: device answers again; watchdog resumed");
        } else {
          spdlog::error(
              "systemd: no device run completed recently; withholding "
              "WATCHDOG=1 so systemd restarts npukd if this lasts {}",
              absl::FormatDuration(watchdog_));
        }
        petting_ = answers;
      }
    }
    if (answers) Notify("WATCHDOG=1");
    absl::MutexLock lock(&mu_);
    const auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_thread_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), period)) return;
  }
}

}  // namespace npuk
