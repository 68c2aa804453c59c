// Each XRT calling mistake, injected into the npu-sim backend, yields zeros
// that the health layer catches for every registered kernel: the canary
// fails (model NOT_SERVING) and a client request through the batcher fails
// instead of returning zeros. Used correctly, every kernel serves its golden
// bytes with SERVING health.
#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
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

// The kernel's golden inputs as a request's planes.
std::vector<std::vector<uint8_t>> GoldenPlanes(const KernelSpec& spec) {
  const size_t n = spec.golden.items;
  std::vector<std::vector<uint8_t>> planes;
  for (size_t p = 0; p < spec.plane_count(); ++p) {
    planes.emplace_back(spec.plane_span(p, n));
  }
  std::vector<std::span<uint8_t>> spans(planes.begin(), planes.end());
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    ScatterArg(spec, a, spec.golden.inputs[a].bytes.data(), n, spans);
  }
  return planes;
}

Outcome Serve(const KernelSpec& spec, Misuse misuse) {
  config::Config cfg;
  cfg.mutable_npu_sim()->set_realtime(false);
  Outcome o;
  auto device = NewNpuSimDeviceForTest(cfg, misuse);
  EXPECT_TRUE(device.ok()) << device.status();
  if (!device.ok()) return o;
  std::vector<std::unique_ptr<Executor>> executors;
  // Room for the whole golden (mel_pcm's has 18 windows).
  const size_t max_items = std::max<size_t>(16, spec.golden.items);
  auto ex = (*device)->CreateExecutor(spec, max_items);
  EXPECT_TRUE(ex.ok()) << ex.status();
  if (!ex.ok()) return o;
  executors.push_back(*std::move(ex));

  HealthMonitor monitor;
  ZeroGuard guard(&monitor);
  BatcherOptions options;
  options.max_batch_items = max_items;
  Batcher batcher(spec, options, std::move(executors), &guard, nullptr);
  monitor.AddModel(&batcher, GoldenCanary(spec));
  o.canary_ok = monitor.RunInitialCanaries().ok();

  const std::vector<std::vector<uint8_t>> planes = GoldenPlanes(spec);
  o.output.assign(spec.golden.output.bytes.size(), 0xAA);
  absl::Notification done;
  auto task = std::make_unique<InferTask>();
  task->items = spec.golden.items;
  for (const std::vector<uint8_t>& p : planes) {
    task->inputs.push_back(absl::MakeConstSpan(p));
  }
  task->output = o.output.data();
  task->done = [&](absl::Status s, const TaskTiming&) {
    o.request = s;
    done.Notify();
  };
  EXPECT_TRUE(batcher.Submit(std::move(task)).ok());
  done.WaitForNotification();
  o.serving = monitor.IsServing(spec.name);
  monitor.Stop();
  batcher.Drain();
  return o;
}

std::string NameOf(const ::testing::TestParamInfo<const KernelSpec*>& info) {
  return info.param->name;
}

class NpuSimGuard : public ::testing::TestWithParam<const KernelSpec*> {};

TEST_P(NpuSimGuard, CorrectUseServesGoldenBytes) {
  const KernelSpec& spec = *GetParam();
  const Outcome o = Serve(spec, Misuse::kNone);
  EXPECT_TRUE(o.canary_ok);
  EXPECT_TRUE(o.serving);
  ASSERT_TRUE(o.request.ok()) << o.request;
  EXPECT_EQ(o.output, std::vector<uint8_t>(spec.golden.output.bytes.begin(),
                                           spec.golden.output.bytes.end()));
}

TEST_P(NpuSimGuard, EveryMisuseIsCaughtNeverReturned) {
  const KernelSpec& spec = *GetParam();
  for (Misuse misuse : {Misuse::kDataBoGroupZero, Misuse::kDataBoNormalFlags,
                        Misuse::kInstrCountInBytes, Misuse::kNoInstructionBo,
                        Misuse::kSkipOutputSync}) {
    const Outcome o = Serve(spec, misuse);
    EXPECT_FALSE(o.canary_ok) << static_cast<int>(misuse);
    EXPECT_FALSE(o.serving) << static_cast<int>(misuse);
    EXPECT_FALSE(o.request.ok()) << static_cast<int>(misuse);
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, NpuSimGuard,
                         ::testing::ValuesIn(AllKernels().begin(),
                                             AllKernels().end()),
                         NameOf);

}  // namespace
}  // namespace npuk
