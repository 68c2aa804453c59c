#include "server/health/systemd_notifier.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/device/fault/fault_device.h"
#include "server/health/health_testing.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

// What systemd would receive: a unix datagram socket at NOTIFY_SOCKET.
class FakeSystemd {
 public:
  FakeSystemd() {
    path_ = ::testing::TempDir() + "/notify." + std::to_string(getpid());
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeSystemd() {
    close(fd_);
    unlink(path_.c_str());
    unsetenv("NOTIFY_SOCKET");
  }

  // Datagrams received within `wait` (stops early once one contains
  // `until`, when given).
  std::vector<std::string> Receive(absl::Duration wait,
                                   const std::string& until = "") {
    std::vector<std::string> got;
    const absl::Time end = absl::Now() + wait;
    while (absl::Now() < end) {
      pollfd p{fd_, POLLIN, 0};
      const int ms =
          static_cast<int>(absl::ToInt64Milliseconds(end - absl::Now()) + 1);
      if (poll(&p, 1, ms) <= 0) continue;
      char buf[4096];
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) continue;
      got.emplace_back(buf, static_cast<size_t>(n));
      if (!until.empty() && got.back().find(until) != std::string::npos) break;
    }
    return got;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

bool AnyContains(const std::vector<std::string>& messages,
                 const std::string& what) {
  for (const std::string& m : messages) {
    if (m.find(what) != std::string::npos) return true;
  }
  return false;
}

struct Daemonish {
  explicit Daemonish(HealthMonitorOptions options) : monitor(options) {
    device = WithFaults(std::make_unique<testing::FakeDevice>(), {}, &faults);
    mel = testing::MakeBatcher(*device, testing::Kernel("mel"), nullptr);
    att = testing::MakeBatcher(*device, testing::Kernel("attention"), nullptr);
    monitor.AddModel(mel.get(), testing::FakeCanary(testing::Kernel("mel"), 2));
    monitor.AddModel(att.get(),
                     testing::FakeCanary(testing::Kernel("attention"), 1));
  }
  ~Daemonish() {
    monitor.Stop();
    faults.Clear();
  }
  FaultController faults;
  std::unique_ptr<Device> device;
  HealthMonitor monitor;
  std::unique_ptr<Batcher> mel, att;
};

HealthMonitorOptions Fast() {
  HealthMonitorOptions o;
  o.interval = absl::Milliseconds(50);
  o.canary_timeout = absl::Milliseconds(100);
  o.answer_window = absl::Milliseconds(300);
  return o;
}

TEST(SystemdNotifier, NoOpWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "100000", 1);
  Daemonish d(Fast());
  SystemdNotifier n(&d.monitor);
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog_interval(), absl::ZeroDuration());
  n.Start();
  n.ReadyWhenServing("unix:/x");
  n.Stopping();
  unsetenv("WATCHDOG_USEC");
}

TEST(SystemdNotifier, ReadyComesOnlyAfterTheCanariesPass) {
  FakeSystemd systemd;
  Daemonish d(Fast());
  SystemdNotifier n(&d.monitor);
  ASSERT_TRUE(n.enabled());
  n.Start();
  std::vector<std::string> before = systemd.Receive(absl::Milliseconds(200));
  ASSERT_FALSE(before.empty());
  EXPECT_THAT(before.front(), HasSubstr("STATUS=starting (canaries): mel "
                                        "NOT_SERVING"));

  // A bad NPU at start-up: canaries fail, READY=1 is withheld.
  d.faults.Set({*ParseFaultSpec("mel:zeros")});
  EXPECT_FALSE(d.monitor.RunInitialCanaries().ok());
  d.monitor.Start();
  n.ReadyWhenServing("unix:/run/npukd/npukd.sock");
  std::vector<std::string> failing = systemd.Receive(absl::Milliseconds(500));
  EXPECT_FALSE(AnyContains(failing, "READY=1"));

  // Once the canaries pass, READY=1 arrives with the models' states.
  d.faults.Clear();
  std::vector<std::string> after =
      systemd.Receive(absl::Seconds(10), "READY=1");
  ASSERT_TRUE(AnyContains(after, "READY=1"));
  const std::string& ready = after.back();
  EXPECT_THAT(ready, HasSubstr("STATUS=serving on unix:/run/npukd/npukd.sock"));
  EXPECT_THAT(ready, HasSubstr("mel SERVING, attention SERVING"));
  EXPECT_TRUE(d.monitor.AllServing());

  n.Stopping();
  std::vector<std::string> stop = systemd.Receive(absl::Seconds(5), "STOPPING");
  EXPECT_TRUE(AnyContains(stop, "STOPPING=1"));
  d.monitor.Stop();  // before `n`, which its observer calls, is destroyed
}

TEST(SystemdNotifier, ReadyAtOnceWhenCanariesAlreadyPassed) {
  FakeSystemd systemd;
  Daemonish d(Fast());
  SystemdNotifier n(&d.monitor);
  n.Start();
  ASSERT_TRUE(d.monitor.RunInitialCanaries().ok());
  n.ReadyWhenServing("127.0.0.1:8001");
  std::vector<std::string> got = systemd.Receive(absl::Seconds(5), "READY=1");
  ASSERT_TRUE(AnyContains(got, "READY=1"));
  // Exactly once.
  n.ReadyWhenServing("127.0.0.1:8001");
  EXPECT_FALSE(
      AnyContains(systemd.Receive(absl::Milliseconds(200)), "READY=1"));
}

TEST(SystemdNotifier, WatchdogStopsWhileTheDeviceHangs) {
  setenv("WATCHDOG_USEC", "100000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  FakeSystemd systemd;
  Daemonish d(Fast());
  SystemdNotifier n(&d.monitor);
  EXPECT_EQ(n.watchdog_interval(), absl::Milliseconds(100));
  ASSERT_TRUE(d.monitor.RunInitialCanaries().ok());
  d.monitor.Start();
  n.Start();
  n.ReadyWhenServing("unix:/tmp/x.sock");
  EXPECT_TRUE(AnyContains(systemd.Receive(absl::Seconds(5), "WATCHDOG=1"),
                          "WATCHDOG=1"));

  d.faults.Set({*ParseFaultSpec("attention:hang")});
  const absl::Time end = absl::Now() + absl::Seconds(10);
  while (d.monitor.DeviceAnswers() && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_FALSE(d.monitor.DeviceAnswers());
  // A ping decided just before the flip may still be in flight.
  std::vector<std::string> flip = systemd.Receive(absl::Milliseconds(150));
  std::vector<std::string> hung = systemd.Receive(absl::Milliseconds(600));
  EXPECT_FALSE(AnyContains(hung, "WATCHDOG=1"));
  flip.insert(flip.end(), hung.begin(), hung.end());
  EXPECT_TRUE(AnyContains(flip, "attention NOT_SERVING") ||
              !d.monitor.IsServing("attention"));

  d.faults.Clear();
  EXPECT_TRUE(AnyContains(systemd.Receive(absl::Seconds(10), "WATCHDOG=1"),
                          "WATCHDOG=1"));
  n.Stop();
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  d.monitor.Stop();  // before `n`, which its observer calls, is destroyed
}

TEST(SystemdNotifier, WatchdogForAnotherPidIsIgnored) {
  setenv("WATCHDOG_USEC", "100000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  FakeSystemd systemd;
  Daemonish d(Fast());
  SystemdNotifier n(&d.monitor);
  EXPECT_EQ(n.watchdog_interval(), absl::ZeroDuration());
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

TEST(SystemdNotifier, StatusLineIsOneLineWithReasons) {
  HealthSnapshot s;
  s.models.push_back({"mel", false, "canary\nfailed", absl::Now(), false});
  s.models.push_back({"attention", true, "", absl::Now(), true});
  s.device_answers = false;
  EXPECT_EQ(SystemdNotifier::StatusLine(s),
            "mel NOT_SERVING (canary failed), attention SERVING; device not "
            "answering");
}

}  // namespace
}  // namespace npuk
