// Each XRT calling mistake, injected into the npu-sim backend, yields zeros
// that the health layer catches: the canary fails (model NOT_SERVING) and a
// client request through the batcher fails instead of returning zeros.
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "kernels/golden/golden.h"
#include "server/batching/batcher.h"
#include "server/device/npu_sim/npu_sim_device.h"
#include "server/health/health_monitor.h"
#include "server/health/zero_guard.h"

namespace npuk {
namespace {

using xrt_backend::Misuse;

struct Outcome {
  bool canary_ok = false;
  bool serving = false;
  absl::Status request;
  std::vector<uint8_t> output;
};

Outcome Serve(Misuse misuse) {
  config::Config cfg;
  cfg.mutable_npu_sim()->set_realtime(false);
  Outcome o;
  auto device = NewNpuSimDeviceForTest(cfg, misuse);
  EXPECT_TRUE(device.ok()) << device.status();
  if (!device.ok()) return o;
  std::vector<std::unique_ptr<Executor>> executors;
  auto ex = (*device)->CreateExecutor(KernelId::kMel, 16);
  EXPECT_TRUE(ex.ok()) << ex.status();
  if (!ex.ok()) return o;
  executors.push_back(*std::move(ex));

  HealthMonitor monitor;
  ZeroGuard guard(&monitor);
  BatcherOptions options;
  options.max_batch_items = 16;
  Batcher batcher(KernelId::kMel, options, std::move(executors), &guard,
                  nullptr);
  monitor.AddModel(&batcher, GoldenCanary(KernelId::kMel));
  o.canary_ok = monitor.RunInitialCanaries().ok();

  const golden::Golden& g = golden::Mel();
  o.output.assign(g.output.size(), 0xAA);
  absl::Notification done;
  auto task = std::make_unique<InferTask>();
  task->items = g.items;
  task->inputs = {absl::MakeConstSpan(g.input.data(), g.input.size())};
  task->output = o.output.data();
  task->done = [&](absl::Status s, const TaskTiming&) {
    o.request = s;
    done.Notify();
  };
  EXPECT_TRUE(batcher.Submit(std::move(task)).ok());
  done.WaitForNotification();
  o.serving = monitor.IsServing("mel");
  monitor.Stop();
  batcher.Drain();
  return o;
}

TEST(NpuSimGuard, CorrectUseServesGoldenBytes) {
  const Outcome o = Serve(Misuse::kNone);
  EXPECT_TRUE(o.canary_ok);
  EXPECT_TRUE(o.serving);
  ASSERT_TRUE(o.request.ok()) << o.request;
  const golden::Golden& g = golden::Mel();
  EXPECT_EQ(o.output, std::vector<uint8_t>(g.output.begin(), g.output.end()));
}

class NpuSimGuardMisuse : public ::testing::TestWithParam<Misuse> {};

TEST_P(NpuSimGuardMisuse, CaughtNeverReturned) {
  const Outcome o = Serve(GetParam());
  EXPECT_FALSE(o.canary_ok);
  EXPECT_FALSE(o.serving);
  EXPECT_FALSE(o.request.ok());
}

INSTANTIATE_TEST_SUITE_P(Conventions, NpuSimGuardMisuse,
                         ::testing::Values(Misuse::kDataBoGroupZero,
                                           Misuse::kDataBoNormalFlags,
                                           Misuse::kInstrCountInBytes,
                                           Misuse::kNoInstructionBo,
                                           Misuse::kSkipOutputSync));

}  // namespace
}  // namespace npuk
