#include "server/health/health_monitor.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/device/fault/fault_device.h"
#include "server/health/health_testing.h"

namespace npuk {
namespace {

using testing::FakeCanary;
using testing::FakeDevice;
using ::testing::HasSubstr;
using testing::Kernel;
using testing::MakeBatcher;

// Generous bound for state changes driven by a 50 ms interval.
constexpr absl::Duration kPatience = absl::Seconds(10);

template <typename Pred>
bool Eventually(Pred pred) {
  const absl::Time end = absl::Now() + kPatience;
  while (absl::Now() < end) {
    if (pred()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return pred();
}

struct Fixture {
  explicit Fixture(HealthMonitorOptions options) : monitor(options) {
    device = WithFaults(std::make_unique<FakeDevice>(), {}, &faults);
    mel = MakeBatcher(*device, testing::Kernel("mel"), nullptr);
    att = MakeBatcher(*device, testing::Kernel("attention"), nullptr);
    monitor.AddModel(mel.get(), FakeCanary(Kernel("mel"), 3));
    monitor.AddModel(att.get(), FakeCanary(Kernel("attention"), 2));
  }
  ~Fixture() {
    monitor.Stop();
    faults.Clear();  // releases hung runs so the batchers can drain
  }
  FaultController faults;
  std::unique_ptr<Device> device;
  HealthMonitor monitor;
  std::unique_ptr<Batcher> mel, att;
};

HealthMonitorOptions Fast() {
  HealthMonitorOptions o;
  o.interval = absl::Milliseconds(50);
  o.canary_timeout = absl::Milliseconds(300);
  return o;
}

TEST(HealthMonitor, NotServingBeforeTheFirstCanary) {
  Fixture f(Fast());
  EXPECT_FALSE(f.monitor.IsServing("mel"));
  EXPECT_FALSE(f.monitor.AllServing());
  EXPECT_FALSE(f.monitor.DeviceAnswers());
  EXPECT_THAT(f.monitor.Snapshot().models[0].reason, HasSubstr("not run yet"));
}

TEST(HealthMonitor, InitialCanariesPass) {
  Fixture f(Fast());
  std::vector<HealthSnapshot> seen;
  f.monitor.AddObserver([&](const HealthSnapshot& s) { seen.push_back(s); });
  ASSERT_TRUE(f.monitor.RunInitialCanaries().ok());
  EXPECT_TRUE(f.monitor.IsServing("mel"));
  EXPECT_TRUE(f.monitor.IsServing("attention"));
  EXPECT_FALSE(f.monitor.IsServing("nope"));
  EXPECT_TRUE(f.monitor.AllServing());
  EXPECT_TRUE(f.monitor.DeviceAnswers());
  ASSERT_EQ(seen.size(), 2u);  // on AddObserver, then the change
  EXPECT_FALSE(seen[0].all_serving);
  EXPECT_TRUE(seen[1].all_serving);
  EXPECT_EQ(f.monitor.model_names(),
            (std::vector<std::string>{"mel", "attention"}));
}

TEST(HealthMonitor, ZerosFailTheInitialCanaryOfThatModelOnly) {
  Fixture f(Fast());
  f.faults.Set({*ParseFaultSpec("mel:zeros")});
  absl::Status status = f.monitor.RunInitialCanaries();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("mel: canary output differs"));
  EXPECT_THAT(status.message(), HasSubstr("all zeros"));
  EXPECT_FALSE(f.monitor.IsServing("mel"));
  EXPECT_TRUE(f.monitor.IsServing("attention"));
  EXPECT_FALSE(f.monitor.AllServing());
  // A wrong answer is still an answer: the watchdog keeps going.
  EXPECT_TRUE(f.monitor.DeviceAnswers());
}

TEST(HealthMonitor, IntervalCanaryDetectsAndRecovers) {
  Fixture f(Fast());
  ASSERT_TRUE(f.monitor.RunInitialCanaries().ok());
  f.monitor.Start();
  f.faults.Set({*ParseFaultSpec("mel:garbage")});
  EXPECT_TRUE(Eventually([&] { return !f.monitor.IsServing("mel"); }));
  EXPECT_TRUE(f.monitor.IsServing("attention"));
  f.faults.Clear();
  EXPECT_TRUE(Eventually([&] { return f.monitor.IsServing("mel"); }));
}

TEST(HealthMonitor, ErrorsAreReportedWithTheDeviceStatus) {
  Fixture f(Fast());
  f.faults.Set({*ParseFaultSpec("attention:error")});
  EXPECT_FALSE(f.monitor.RunInitialCanaries().ok());
  const HealthSnapshot s = f.monitor.Snapshot();
  EXPECT_TRUE(s.models[0].serving);
  EXPECT_FALSE(s.models[1].serving);
  EXPECT_THAT(s.models[1].reason, HasSubstr("UNAVAILABLE"));
  EXPECT_FALSE(s.models[1].last_canary_ok);
}

TEST(HealthMonitor, ReportedFaultFlipsAtOnceAndTriggersACanary) {
  HealthMonitorOptions o = Fast();
  o.interval = absl::Hours(1);  // only the triggered canary can recover it
  Fixture f(o);
  ASSERT_TRUE(f.monitor.RunInitialCanaries().ok());
  std::vector<bool> mel_states;
  absl::Mutex mu;
  f.monitor.AddObserver([&](const HealthSnapshot& s) {
    absl::MutexLock lock(&mu);
    mel_states.push_back(s.models[0].serving);
  });
  f.monitor.Start();
  f.monitor.ReportFault("mel", absl::InternalError("zero frame"));
  EXPECT_TRUE(Eventually([&] { return f.monitor.IsServing("mel"); }));
  f.monitor.Stop();  // the observer uses mu/mel_states, destroyed before f
  absl::MutexLock lock(&mu);
  EXPECT_EQ(mel_states, (std::vector<bool>{true, false, true}));
}

TEST(HealthMonitor, ReportWhileNotServingDoesNotTrigger) {
  HealthMonitorOptions o = Fast();
  o.interval = absl::Hours(1);
  Fixture f(o);
  f.faults.Set({*ParseFaultSpec("mel:zeros")});
  ASSERT_FALSE(f.monitor.RunInitialCanaries().ok());
  f.faults.Clear();
  f.monitor.Start();
  f.monitor.ReportFault("mel", absl::InternalError("again"));
  absl::SleepFor(absl::Milliseconds(200));
  // No canary ran, so the stale NOT_SERVING stays until the interval.
  EXPECT_FALSE(f.monitor.IsServing("mel"));
  EXPECT_THAT(f.monitor.Snapshot().models[0].reason,
              HasSubstr("canary output differs"));
}

TEST(HealthMonitor, HungDeviceStopsAnsweringAndRecovers) {
  HealthMonitorOptions o = Fast();
  o.canary_timeout = absl::Milliseconds(100);
  o.answer_window = absl::Milliseconds(300);
  Fixture f(o);
  ASSERT_TRUE(f.monitor.RunInitialCanaries().ok());
  f.monitor.Start();
  f.faults.Set({*ParseFaultSpec("mel:hang")});
  EXPECT_TRUE(Eventually([&] { return !f.monitor.DeviceAnswers(); }));
  EXPECT_FALSE(f.monitor.IsServing("mel"));
  EXPECT_THAT(f.monitor.Snapshot().models[0].reason,
              HasSubstr("not answering"));
  EXPECT_TRUE(f.monitor.IsServing("attention"));
  f.faults.Clear();
  EXPECT_TRUE(Eventually(
      [&] { return f.monitor.DeviceAnswers() && f.monitor.IsServing("mel"); }));
}

TEST(HealthMonitorQueue, AFullQueueDelaysTheCanaryButDoesNotFailIt) {
  FaultController faults;
  auto device = WithFaults(std::make_unique<FakeDevice>(),
                           {*ParseFaultSpec("mel:hang")}, &faults);
  auto mel = MakeBatcher(*device, testing::Kernel("mel"), nullptr, 8,
                         /*max_queue_size=*/1);
  HealthMonitor monitor(Fast());
  monitor.AddModel(mel.get(), FakeCanary(Kernel("mel"), 1));

  // One user request hangs in the device, a second fills the queue.
  const Canary input = FakeCanary(Kernel("mel"), 1);
  std::vector<uint8_t> out_a(80), out_b(80);
  std::atomic<int> finished{0};
  const auto submit = [&](std::vector<uint8_t>& out) {
    auto task = std::make_unique<InferTask>();
    task->items = 1;
    task->inputs.emplace_back(input.planes[0]);
    task->output = out.data();
    task->done = [&](absl::Status, const TaskTiming&) { ++finished; };
    return mel->Submit(std::move(task));
  };
  ASSERT_TRUE(submit(out_a).ok());
  ASSERT_TRUE(Eventually([&] { return mel->pending() == 0; }));
  ASSERT_TRUE(submit(out_b).ok());
  ASSERT_EQ(submit(out_b).code(), absl::StatusCode::kResourceExhausted);

  absl::Status first;
  std::thread canaries([&] { first = monitor.RunInitialCanaries(); });
  absl::SleepFor(absl::Milliseconds(100));  // the canary is being refused
  faults.Clear();                           // the device gets going again
  canaries.join();
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_TRUE(monitor.IsServing("mel"));
  EXPECT_TRUE(Eventually([&] { return finished.load() == 2; }));
}

}  // namespace
}  // namespace npuk
