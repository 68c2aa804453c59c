#include "server/device/fault/fault_device.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "server/device/fake/fake_device.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

using testing::FakeDevice;

const KernelSpec& Mel() { return *FindKernel("mel"); }
const KernelSpec& Attention() { return *FindKernel("attention"); }

// The fake's output for its never-written (all-zero) inputs: input + 1.
constexpr uint8_t kReal = 1;

bool AllEqual(absl::Span<const uint8_t> bytes, uint8_t value) {
  return std::all_of(bytes.begin(), bytes.end(),
                     [&](uint8_t b) { return b == value; });
}

TEST(ParseFaultSpec, AcceptsEveryKindAndRate) {
  absl::StatusOr<FaultSpec> spec = ParseFaultSpec("mel:zeros");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model, "mel");
  EXPECT_EQ(spec->kind, FaultSpec::kZeros);
  EXPECT_EQ(spec->rate, 1.0);

  spec = ParseFaultSpec("attention:timeout:0.25");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->kind, FaultSpec::kTimeout);
  EXPECT_EQ(spec->rate, 0.25);

  for (const char* kind :
       {"zeros", "garbage", "error", "timeout", "slow", "hang"}) {
    spec = ParseFaultSpec(std::string("*:") + kind);
    ASSERT_TRUE(spec.ok()) << kind << ": " << spec.status();
    EXPECT_EQ(FaultKindName(spec->kind), kind);
  }
}

TEST(ParseFaultSpec, RejectsWithActionableMessages) {
  for (const char* bad : {"mel", "mel:zeros:0.5:1", "foo:zeros", "mel:boom",
                          "mel:zeros:0", "mel:zeros:1.5", "mel:zeros:x", ""}) {
    absl::StatusOr<FaultSpec> spec = ParseFaultSpec(bad);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(spec.status().message(), HasSubstr("MODEL:KIND[:RATE]"));
  }
  EXPECT_THAT(ParseFaultSpec("foo:zeros").status().message(),
              HasSubstr("unknown model 'foo'"));
  EXPECT_THAT(ParseFaultSpec("mel:boom").status().message(),
              HasSubstr("unknown kind 'boom'"));
}

TEST(ParseFaultSpec, AcceptsEveryRegisteredModelAndListsThem) {
  for (const KernelSpec* spec : AllKernels()) {
    absl::StatusOr<FaultSpec> parsed = ParseFaultSpec(spec->name + ":error");
    ASSERT_TRUE(parsed.ok()) << spec->name << ": " << parsed.status();
    EXPECT_EQ(parsed->model, spec->name);
  }
  EXPECT_TRUE(ParseFaultSpec("passthrough:zeros").ok());
  EXPECT_THAT(ParseFaultSpec("foo:zeros").status().message(),
              HasSubstr(KernelNames()));
}

TEST(ParseFaultSpecs, SplitsOnCommas) {
  absl::StatusOr<std::vector<FaultSpec>> specs =
      ParseFaultSpecs("mel:zeros,attention:slow:0.5");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ(FaultSpecToString((*specs)[1]), "attention:slow:0.5");
  EXPECT_TRUE(ParseFaultSpecs("")->empty());
  EXPECT_FALSE(ParseFaultSpecs("mel:zeros,bad").ok());
}

TEST(WithFaults, NoFaultsNoControllerReturnsTheDeviceItself) {
  auto device = std::make_unique<FakeDevice>();
  Device* raw = device.get();
  EXPECT_EQ(WithFaults(std::move(device), {}, nullptr).get(), raw);
}

TEST(WithFaults, ZerosOnlyOnTheNamedModel) {
  auto device = WithFaults(std::make_unique<FakeDevice>(),
                           {*ParseFaultSpec("mel:zeros")}, nullptr);
  auto mel = *device->CreateExecutor(Mel(), 4);
  auto att = *device->CreateExecutor(Attention(), 2);
  ASSERT_TRUE(mel->Run(3).ok());
  EXPECT_TRUE(AllEqual(mel->output().subspan(0, 3 * 80), 0));
  ASSERT_TRUE(att->Run(2).ok());
  EXPECT_TRUE(AllEqual(att->output().subspan(0, 2 * 4096), kReal));
}

TEST(WithFaults, GarbageIsNotTheRealOutput) {
  FaultOptions options;
  options.seed = 7;
  auto device = WithFaults(std::make_unique<FakeDevice>(),
                           {*ParseFaultSpec("*:garbage")}, nullptr, options);
  auto mel = *device->CreateExecutor(Mel(), 8);
  ASSERT_TRUE(mel->Run(8).ok());
  EXPECT_FALSE(AllEqual(mel->output().subspan(0, 8 * 80), kReal));
}

TEST(WithFaults, ErrorAndTimeoutAreUnavailable) {
  FaultController controller;
  FaultOptions options;
  options.run_timeout = absl::Milliseconds(20);
  auto pattern = std::make_unique<FakeDevice>();
  FakeDevice* backend = pattern.get();
  auto device = WithFaults(std::move(pattern), {*ParseFaultSpec("mel:error")},
                           &controller, options);
  auto mel = *device->CreateExecutor(Mel(), 1);
  absl::Status status = mel->Run(1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("mel:error"));
  EXPECT_EQ(backend->runs(), 0u);

  controller.Set({*ParseFaultSpec("mel:timeout")});
  const absl::Time start = absl::Now();
  status = mel->Run(1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("timed out"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(20));
}

TEST(FaultController, DrillTogglesAndClears) {
  FaultController controller;
  auto device = WithFaults(std::make_unique<FakeDevice>(),
                           {*ParseFaultSpec("mel:zeros")}, &controller);
  auto mel = *device->CreateExecutor(Mel(), 1);
  ASSERT_TRUE(mel->Run(1).ok());
  EXPECT_TRUE(AllEqual(mel->output().subspan(0, 80), 0));

  EXPECT_FALSE(controller.ToggleArmed());
  ASSERT_TRUE(mel->Run(1).ok());
  EXPECT_TRUE(AllEqual(mel->output().subspan(0, 80), kReal));

  EXPECT_TRUE(controller.ToggleArmed());
  ASSERT_TRUE(mel->Run(1).ok());
  EXPECT_TRUE(AllEqual(mel->output().subspan(0, 80), 0));

  controller.Clear();
  EXPECT_FALSE(controller.For("mel").has_value());
  ASSERT_TRUE(mel->Run(1).ok());
  EXPECT_TRUE(AllEqual(mel->output().subspan(0, 80), kReal));
}

TEST(FaultController, SpecificModelWinsOverWildcard) {
  FaultController controller;
  controller.Set({*ParseFaultSpec("*:slow"), *ParseFaultSpec("mel:error")});
  EXPECT_EQ(controller.For("mel")->kind, FaultSpec::kError);
  EXPECT_EQ(controller.For("attention")->kind, FaultSpec::kSlow);
}

TEST(FaultController, RateAffectsSomeRunsOnly) {
  FaultOptions options;
  options.seed = 42;
  auto device =
      WithFaults(std::make_unique<FakeDevice>(),
                 {*ParseFaultSpec("mel:zeros:0.5")}, nullptr, options);
  auto mel = *device->CreateExecutor(Mel(), 1);
  int zeroed = 0;
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(mel->Run(1).ok());
    zeroed += AllEqual(mel->output().subspan(0, 80), 0) ? 1 : 0;
  }
  // Binomial(400, 0.5): outside [120, 280] has probability < 1e-15.
  EXPECT_GT(zeroed, 120);
  EXPECT_LT(zeroed, 280);
}

TEST(FaultController, HangBlocksUntilCleared) {
  FaultController controller;
  auto device = WithFaults(std::make_unique<FakeDevice>(),
                           {*ParseFaultSpec("attention:hang")}, &controller);
  auto att = *device->CreateExecutor(Attention(), 1);
  std::atomic<bool> returned{false};
  std::thread runner([&] {
    EXPECT_TRUE(att->Run(1).ok());
    returned = true;
  });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_FALSE(returned.load());
  controller.Clear();
  runner.join();
  EXPECT_TRUE(returned.load());
}

}  // namespace
}  // namespace npuk
