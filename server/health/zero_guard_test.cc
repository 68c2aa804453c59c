#include "server/health/zero_guard.h"

#include <memory>
#include <span>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/device/cpu/cpu_device.h"
#include "server/device/fault/fault_device.h"
#include "server/health/health_testing.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;
using testing::Kernel;

// A task over the golden input of `kernel`, planar as the batcher wants it.
struct GoldenTask {
  explicit GoldenTask(const KernelSpec& kernel) : canary(GoldenCanary(kernel)) {
    task.items = canary.items;
    for (const auto& p : canary.planes) task.inputs.emplace_back(p);
  }
  Canary canary;
  InferTask task;
};

// A monitor whose "mel" model is SERVING (through a trivial test device), to
// observe what the guard reports.
struct ServingMonitor {
  ServingMonitor() {
    batcher = testing::MakeBatcher(device, Kernel("mel"), nullptr);
    monitor.AddModel(batcher.get(),
                     testing::FakeCanary(testing::Kernel("mel"), 1));
    EXPECT_TRUE(monitor.RunInitialCanaries().ok());
  }
  testing::FakeDevice device;
  HealthMonitor monitor;
  std::unique_ptr<Batcher> batcher;
};

TEST(ZeroGuard, PassesTheReferenceOutput) {
  ZeroGuard guard(nullptr);
  GoldenTask mel(Kernel("mel"));
  EXPECT_TRUE(
      guard.Verify(Kernel("mel"), mel.task, mel.canary.expected.data()).ok());
  GoldenTask att(Kernel("attention"));
  EXPECT_TRUE(
      guard.Verify(Kernel("attention"), att.task, att.canary.expected.data())
          .ok());
  EXPECT_EQ(guard.caught(), 0u);
}

TEST(ZeroGuard, FailsAZeroMelFrameAndMarksTheModel) {
  ServingMonitor m;
  ZeroGuard guard(&m.monitor);
  GoldenTask mel(Kernel("mel"));
  std::vector<uint8_t> out = mel.canary.expected;
  std::fill_n(out.begin() + 3 * 80, 80, 0);  // frame 3 of 8 left zero
  absl::Status status = guard.Verify(Kernel("mel"), mel.task, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(),
              HasSubstr("all-zero mel output frame 3 of 8 where the CPU "
                        "reference is non-zero"));
  EXPECT_THAT(status.message(), HasSubstr("NOT_SERVING"));
  EXPECT_EQ(guard.caught(), 1u);
  EXPECT_FALSE(m.monitor.IsServing("mel"));
  EXPECT_THAT(m.monitor.Snapshot().models[0].reason, HasSubstr("frame 3"));
}

TEST(ZeroGuard, CanaryTasksFailButAreNotReported) {
  ServingMonitor m;
  ZeroGuard guard(&m.monitor);
  GoldenTask mel(Kernel("mel"));
  mel.task.canary = true;
  std::vector<uint8_t> zeros(mel.canary.expected.size(), 0);
  EXPECT_EQ(guard.Verify(Kernel("mel"), mel.task, zeros.data()).code(),
            absl::StatusCode::kInternal);
  EXPECT_TRUE(m.monitor.IsServing("mel"));
}

TEST(ZeroGuard, AcceptsATrueZeroAttentionTile) {
  // v all zero: softmax(q k^T) . 0 = 0, so zero is the right answer.
  GoldenTask att(Kernel("attention"));
  std::fill(att.canary.planes[2].begin(), att.canary.planes[2].end(), 0);
  att.task.inputs[2] = att.canary.planes[2];
  std::vector<uint8_t> zeros(att.canary.expected.size(), 0);
  ZeroGuard guard(nullptr);
  EXPECT_TRUE(guard.Verify(Kernel("attention"), att.task, zeros.data()).ok());
  // With the golden v, the same zeros are a device failure.
  GoldenTask real(Kernel("attention"));
  absl::Status status =
      guard.Verify(Kernel("attention"), real.task, zeros.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("tile 0 of 4"));
}

// attention_stream's golden units with their key tiles given by a writer
// (as the attention model gives them): the guard writes them again for the
// reference, so a zero unit is still caught.
TEST(ZeroGuard, ReadsAWrittenSteppedPlane) {
  const KernelSpec& kernel = Kernel("attention_stream");
  GoldenTask g(kernel);
  const size_t p = kernel.stepped_plane();
  const std::vector<uint8_t> kv = g.canary.planes[p];
  const std::vector<std::span<const uint8_t>> planes(g.task.inputs.begin(),
                                                     g.task.inputs.end());
  const size_t bytes = StepSpanOfPlanes(kernel, planes, g.task.items);
  ASSERT_LE(bytes, kv.size());
  int writes = 0;
  g.task.inputs[p] = {};
  g.task.write_stepped = [&](uint8_t* dest) {
    ++writes;
    std::copy_n(kv.begin(), bytes, dest);
  };
  ZeroGuard guard(nullptr);
  EXPECT_TRUE(guard.Verify(kernel, g.task, g.canary.expected.data()).ok());
  EXPECT_EQ(writes, 0);  // no zero unit, no reference
  std::vector<uint8_t> zeros(g.canary.expected.size(), 0);
  absl::Status status = guard.Verify(kernel, g.task, zeros.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(writes, 1);
  // The last units only fill the round: zeros there are by design.
  g.task.padding_items = g.task.items - 1;
  std::vector<uint8_t> tail = g.canary.expected;
  std::fill(tail.begin() + kernel.output_bytes(), tail.end(), 0);
  EXPECT_TRUE(guard.Verify(kernel, g.task, tail.data()).ok());
}

TEST(ZeroGuard, PassthroughZeroBlocksAreCaughtUnlessTheInputIsZero) {
  ZeroGuard guard(nullptr);
  GoldenTask pass(Kernel("passthrough"));
  EXPECT_TRUE(
      guard
          .Verify(Kernel("passthrough"), pass.task, pass.canary.expected.data())
          .ok());
  std::vector<uint8_t> out = pass.canary.expected;
  std::fill_n(out.begin() + 4096, 4096, 0);  // block 1 left zero
  absl::Status status =
      guard.Verify(Kernel("passthrough"), pass.task, out.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(),
              HasSubstr("all-zero passthrough output block 1 of"));
  // A zero input block passes through as zeros: the right answer.
  std::fill_n(pass.canary.planes[0].begin() + 4096, 4096, 0);
  pass.task.inputs[0] = pass.canary.planes[0];
  EXPECT_TRUE(guard.Verify(Kernel("passthrough"), pass.task, out.data()).ok());
  EXPECT_EQ(guard.caught(), 1u);
}

TEST(GoldenCanary, EveryKernelsCanaryPassesOnItsReference) {
  // The golden device arguments, scattered into planes and gathered back by
  // the batcher, must give the golden output on the kernel's reference.
  testing::FakeDevice device(testing::FakeMode::kReference);
  for (const KernelSpec* spec : AllKernels()) {
    HealthMonitor monitor;
    auto batcher =
        testing::MakeBatcher(device, *spec, nullptr, spec->golden.items);
    const Canary canary = GoldenCanary(*spec);
    EXPECT_EQ(canary.planes.size(), spec->plane_count()) << spec->name;
    monitor.AddModel(batcher.get(), canary);
    EXPECT_TRUE(monitor.RunInitialCanaries().ok()) << spec->name;
    EXPECT_TRUE(monitor.IsServing(spec->name)) << spec->name;
  }
}

TEST(ZeroGuard, NoClientSeesZerosThroughTheRealPath) {
  // CPU backend + zeros fault + batcher with the guard: every request fails
  // with INTERNAL instead of returning the zeros.
  FaultController faults;
  std::unique_ptr<Device> device =
      WithFaults(NewCpuDevice(1), {*ParseFaultSpec("mel:zeros")}, &faults);
  ZeroGuard guard(nullptr);
  auto batcher =
      testing::MakeBatcher(*device, testing::Kernel("mel"), &guard, 16);
  GoldenTask mel(Kernel("mel"));
  for (int round = 0; round < 2; ++round) {
    std::vector<uint8_t> out(mel.canary.expected.size(), 0xEE);
    absl::Notification done;
    absl::Status result;
    auto task = std::make_unique<InferTask>();
    task->items = mel.task.items;
    task->inputs = mel.task.inputs;
    task->output = out.data();
    task->done = [&](absl::Status s, const TaskTiming&) {
      result = std::move(s);
      done.Notify();
    };
    ASSERT_TRUE(batcher->Submit(std::move(task)).ok());
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    if (round == 0) {
      EXPECT_EQ(result.code(), absl::StatusCode::kInternal) << result;
    } else {
      // The fault cleared: the real answer comes back.
      EXPECT_TRUE(result.ok()) << result;
      ASSERT_EQ(out.size(), mel.canary.expected.size());
      const auto diff =
          std::mismatch(out.begin(), out.end(), mel.canary.expected.begin());
      EXPECT_EQ(diff.first, out.end())
          << "first difference at byte " << (diff.first - out.begin());
    }
    faults.Clear();
  }
  EXPECT_EQ(guard.caught(), 1u);
}

}  // namespace
}  // namespace npuk
