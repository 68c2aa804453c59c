// The xrt backend through npu-sim: bytes identical to the CPU backend when
// XRT is used correctly, all-zero output for each calling mistake the
// prior attempt made, and the failure handling around TIMEOUT/ERROR.
#include "server/device/npu_sim/npu_sim_device.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/common/score_scale.h"
#include "kernels/golden/golden.h"
#include "kernels/tools/txn_package/kernel_package.h"
#include "npusim/machine.h"
#include "server/device/cpu/cpu_device.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;
using xrt_backend::Misuse;
namespace fs = std::filesystem;

config::Config SimConfig() {
  config::Config c;
  c.mutable_npu_sim()->set_realtime(false);
  c.mutable_xrt()->set_run_timeout_ms(20);
  return c;
}

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// Runs `input` (n items) on `device` and returns the output bytes.
absl::StatusOr<std::vector<uint8_t>> RunOn(
    Device& device, KernelId kernel, size_t max_items, size_t n,
    const std::vector<uint8_t>& input, const std::vector<ScoreScale>& scales) {
  absl::StatusOr<std::unique_ptr<Executor>> ex =
      device.CreateExecutor(kernel, max_items);
  if (!ex.ok()) return ex.status();
  std::memcpy((*ex)->input().data(), input.data(), input.size());
  if (absl::Status s = (*ex)->Run(n, scales); !s.ok()) return s;
  const size_t out = n * LayoutOf(kernel).out_bytes;
  return std::vector<uint8_t>((*ex)->output().begin(),
                              (*ex)->output().begin() + out);
}

std::vector<uint8_t> Input(KernelId kernel, size_t n, uint32_t seed) {
  std::vector<uint8_t> in = RandomBytes(n * LayoutOf(kernel).in_bytes, seed);
  if (kernel == KernelId::kMel) {
    // Keep audio within a realistic range so the frames differ in output.
    auto* s = reinterpret_cast<int16_t*>(in.data());
    for (size_t i = 0; i < in.size() / 2; ++i)
      s[i] = static_cast<int16_t>(s[i] / 4);
  }
  return in;
}

std::vector<ScoreScale> Scales(KernelId kernel, size_t n) {
  if (kernel == KernelId::kMel) return {};
  std::vector<ScoreScale> scales;
  for (size_t i = 0; i < n; ++i) {
    scales.push_back(
        QuantizeScoreScale(0.01 + 0.005 * static_cast<double>(i % 7)));
  }
  return scales;
}

class NpuSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    npusim::Machine::Get(0)->ClearFaults();
    cpu_ = NewCpuDevice(1);
  }
  std::unique_ptr<Device> cpu_;
};

TEST_F(NpuSimTest, GoldenVectorsBitExact) {
  auto dev = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->name(), "npu-sim");
  const golden::Golden& mel = golden::Mel();
  auto out = RunOn(**dev, KernelId::kMel, mel.items, mel.items,
                   {mel.input.begin(), mel.input.end()}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::vector<uint8_t>(mel.output.begin(), mel.output.end()));

  const golden::Golden& att = golden::Attention();
  out = RunOn(**dev, KernelId::kAttention, att.items, att.items,
              {att.input.begin(), att.input.end()},
              std::vector<ScoreScale>(att.items, att.scale));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::vector<uint8_t>(att.output.begin(), att.output.end()));
}

struct Case {
  KernelId kernel;
  size_t max_items;
  size_t n;
  bool runlist;
};

class NpuSimMatchesCpu : public NpuSimTest,
                         public ::testing::WithParamInterface<Case> {};

TEST_P(NpuSimMatchesCpu, SameBytes) {
  const Case c = GetParam();
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_use_runlist(c.runlist);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok()) << sim.status();
  const std::vector<uint8_t> in =
      Input(c.kernel, c.n, static_cast<uint32_t>(c.n));
  const std::vector<ScoreScale> scales = Scales(c.kernel, c.n);
  auto want = RunOn(*cpu_, c.kernel, c.max_items, c.n, in, scales);
  auto got = RunOn(**sim, c.kernel, c.max_items, c.n, in, scales);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
}

INSTANTIATE_TEST_SUITE_P(
    Batches, NpuSimMatchesCpu,
    ::testing::Values(Case{KernelId::kMel, 1, 1, false},
                      Case{KernelId::kMel, 64, 5, false},  // padded to 16
                      Case{KernelId::kMel, 256, 256, false},
                      Case{KernelId::kMel, 300, 299, false},  // 256 + 43->64
                      Case{KernelId::kMel, 64, 33, true},     // runlist
                      Case{KernelId::kAttention, 64, 3, false},
                      Case{KernelId::kAttention, 64, 64, false},
                      Case{KernelId::kAttention, 8, 7, true}));

TEST_F(NpuSimTest, ExecutorReusesItsBuffersAcrossRuns) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(KernelId::kMel, 32);
  ASSERT_TRUE(ex.ok());
  const uint8_t* in = (*ex)->input().data();
  for (uint32_t round = 0; round < 3; ++round) {
    const size_t n = 4 + round * 9;
    const std::vector<uint8_t> data = Input(KernelId::kMel, n, round);
    std::memcpy((*ex)->input().data(), data.data(), data.size());
    ASSERT_TRUE((*ex)->Run(n, {}).ok());
    auto want = RunOn(*cpu_, KernelId::kMel, n, n, data, {});
    ASSERT_TRUE(want.ok());
    EXPECT_TRUE(
        std::equal(want->begin(), want->end(), (*ex)->output().begin()));
    EXPECT_EQ((*ex)->input().data(), in);
  }
}

class NpuSimMisuse : public NpuSimTest,
                     public ::testing::WithParamInterface<Misuse> {};

// The prior attempt's symptom: the run reports COMPLETED, Run() succeeds,
// and the output is all zeros. Only the health layer's zero guard can
// catch it, which is why that guard exists.
TEST_P(NpuSimMisuse, OutputIsAllZeros) {
  for (KernelId kernel : {KernelId::kMel, KernelId::kAttention}) {
    auto sim = NewNpuSimDeviceForTest(SimConfig(), GetParam());
    ASSERT_TRUE(sim.ok()) << sim.status();
    const size_t n = 4;
    auto out =
        RunOn(**sim, kernel, n, n, Input(kernel, n, 7), Scales(kernel, n));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, std::vector<uint8_t>(out->size(), 0))
        << KernelName(kernel) << " misuse " << static_cast<int>(GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Conventions, NpuSimMisuse,
                         ::testing::Values(Misuse::kDataBoGroupZero,
                                           Misuse::kDataBoNormalFlags,
                                           Misuse::kInstrCountInBytes,
                                           Misuse::kNoInstructionBo,
                                           Misuse::kSkipOutputSync));

TEST_F(NpuSimTest, MissingInputSyncComputesOnStaleData) {
  auto sim = NewNpuSimDeviceForTest(SimConfig(), Misuse::kSkipInputSync);
  ASSERT_TRUE(sim.ok());
  const std::vector<uint8_t> in = Input(KernelId::kMel, 4, 3);
  auto got = RunOn(**sim, KernelId::kMel, 4, 4, in, {});
  auto want = RunOn(*cpu_, KernelId::kMel, 4, 4, in, {});
  auto stale = RunOn(*cpu_, KernelId::kMel, 4, 4,
                     std::vector<uint8_t>(in.size(), 0), {});
  ASSERT_TRUE(got.ok() && want.ok() && stale.ok());
  EXPECT_NE(*got, *want);
  EXPECT_EQ(*got, *stale);  // the device saw the never-synced zeros
}

TEST_F(NpuSimTest, TimeoutFailsRetriesThenRebuildsContext) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(KernelId::kMel, 8);
  ASSERT_TRUE(ex.ok());
  npusim::Machine::Get(0)->InjectFault({npusim::FaultKind::kTimeout, 2});
  absl::Status first = (*ex)->Run(8, {});
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(first.message()), HasSubstr("ERT_CMD_STATE_TIMEOUT"));
  EXPECT_THAT(std::string(first.message()), HasSubstr("retries on the same"));
  absl::Status second = (*ex)->Run(8, {});
  EXPECT_THAT(std::string(second.message()), HasSubstr("rebuilt the hardware"));
  EXPECT_TRUE((*ex)->Run(8, {}).ok());
}

TEST_F(NpuSimTest, ErrorStateFailsTheRun) {
  for (bool runlist : {false, true}) {
    config::Config cfg = SimConfig();
    cfg.mutable_xrt()->set_use_runlist(runlist);
    auto sim = NewNpuSimDevice(cfg);
    ASSERT_TRUE(sim.ok());
    auto ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
    ASSERT_TRUE(ex.ok());
    npusim::Machine::Get(0)->InjectFault({npusim::FaultKind::kError});
    absl::Status s = (*ex)->Run(4, {});
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("ERT_CMD_STATE_ERROR"));
    EXPECT_TRUE((*ex)->Run(4, {}).ok());
  }
}

TEST_F(NpuSimTest, ZerosFaultIsReturnedAsDataForTheGuardToCatch) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
  ASSERT_TRUE(ex.ok());
  npusim::Machine::Get(0)->InjectFault({npusim::FaultKind::kZeros});
  ASSERT_TRUE((*ex)->Run(4, {}).ok());
  EXPECT_TRUE(std::all_of((*ex)->output().begin(), (*ex)->output().end(),
                          [](uint8_t b) { return b == 0; }));
}

TEST_F(NpuSimTest, StartupErrorsNameTheProblem) {
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_kernel_dir("/nonexistent/kernels");
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("manifest.json"));

  // A package whose instruction binary was replaced after packaging.
  const fs::path dir = fs::path(::testing::TempDir()) / "npu_sim_tampered";
  fs::remove_all(dir);
  fs::copy(DefaultNpuSimKernelDir(), dir, fs::copy_options::recursive);
  fs::copy_file(dir / "mel" / "insts_1.bin", dir / "mel" / "insts_4.bin",
                fs::copy_options::overwrite_existing);
  cfg.mutable_xrt()->set_kernel_dir(dir.string());
  sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
  EXPECT_FALSE(ex.ok());
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("insts_4.bin"));

  // An xclbin that is not the simulator's (a real one, say).
  fs::remove_all(dir);
  fs::copy(DefaultNpuSimKernelDir(), dir, fs::copy_options::recursive);
  kernelpkg::Manifest m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  *kernelpkg::ReadFile(dir / "mel" / "manifest.json"), &m)
                  .ok());
  std::ofstream(dir / "mel" / "mel.xclbin") << "xclbin2\n";
  ASSERT_TRUE(kernelpkg::WriteManifest(dir / "mel", m).ok());
  sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ex.status().message()),
              HasSubstr("not an npu-sim xclbin"));
}

TEST_F(NpuSimTest, ExecutorsOfAKernelShareOneHardwareContext) {
  // Phoenix has 6 contexts; 4 instances of each model must still fit.
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  std::vector<std::unique_ptr<Executor>> executors;
  for (int i = 0; i < 4; ++i) {
    for (KernelId k : {KernelId::kMel, KernelId::kAttention}) {
      auto ex = (*sim)->CreateExecutor(k, 4);
      ASSERT_TRUE(ex.ok()) << ex.status();
      executors.push_back(*std::move(ex));
    }
  }
  // A rebuild by one executor is followed by the others.
  npusim::Machine::Get(0)->InjectFault({npusim::FaultKind::kError, 2});
  EXPECT_FALSE(executors[0]->Run(4, {}).ok());
  EXPECT_THAT(std::string(executors[0]->Run(4, {}).message()),
              HasSubstr("rebuilt"));
  for (size_t i = 0; i < executors.size(); i += 2) {
    EXPECT_TRUE(executors[i]->Run(4, {}).ok()) << i;
  }
}

TEST_F(NpuSimTest, RunlistNeedsSingleItemSequence) {
  const fs::path dir = fs::path(::testing::TempDir()) / "npu_sim_no_n1";
  fs::remove_all(dir);
  ASSERT_TRUE(kernelpkg::WriteSimPackage(dir, txn::MelDesign(), {16, 64}).ok());
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_kernel_dir(dir.string());
  cfg.mutable_xrt()->set_use_runlist(true);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(KernelId::kMel, 4);
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("N=1"));
}

}  // namespace
}  // namespace npuk
