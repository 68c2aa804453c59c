// The xrt backend through npu-sim: bytes identical to the CPU backend for
// every registered kernel when XRT is used correctly, all-zero output for
// each calling mistake the prior attempt made, and the failure handling
// around TIMEOUT/ERROR.
#include "server/device/npu_sim/npu_sim_device.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn_package/kernel_package.h"
#include "npusim/machine.h"
#include "server/device/cpu/cpu_device.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;
using xrt_backend::Misuse;
namespace fs = std::filesystem;

// Per device input argument: items * arg_bytes(a) bytes.
using Args = std::vector<std::vector<uint8_t>>;

const KernelSpec& Kernel(const std::string& name) {
  const KernelSpec* spec = FindKernel(name);
  EXPECT_NE(spec, nullptr) << name << " is not registered";
  return *spec;
}

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

// Runs `args` (n items) on `device` and returns the output bytes.
absl::StatusOr<std::vector<uint8_t>> RunOn(Device& device,
                                           const KernelSpec& spec,
                                           size_t max_items, size_t n,
                                           const Args& args) {
  absl::StatusOr<std::unique_ptr<Executor>> ex =
      device.CreateExecutor(spec, max_items);
  if (!ex.ok()) return ex.status();
  for (size_t a = 0; a < args.size(); ++a) {
    std::memcpy((*ex)->input(a).data(), args[a].data(), args[a].size());
  }
  if (absl::Status s = (*ex)->Run(n); !s.ok()) return s;
  const size_t out = n * spec.output_bytes();
  return std::vector<uint8_t>((*ex)->output().begin(),
                              (*ex)->output().begin() + out);
}

// Random requests of n items as device arguments: random tensors (INT16
// ones, audio, kept to a quarter of full scale so items differ in output)
// and, for kernels with parameters, per-item records (attention's score
// scale varies).
Args Inputs(const KernelSpec& spec, size_t n, uint32_t seed) {
  std::vector<std::vector<uint8_t>> planes;
  for (size_t p = 0; p < spec.inputs.size(); ++p) {
    planes.push_back(RandomBytes(spec.plane_span(p, n), seed + 97 * p));
    if (spec.inputs[p].dtype != DType::kInt16) continue;
    for (size_t i = 0; i < planes[p].size(); i += 2) {
      int16_t s;
      std::memcpy(&s, &planes[p][i], 2);
      s = static_cast<int16_t>(s / 4);
      std::memcpy(&planes[p][i], &s, 2);
    }
  }
  if (spec.param_bytes > 0) {
    std::vector<uint8_t> records(n * spec.param_bytes);
    for (size_t i = 0; i < n; ++i) {
      std::vector<ParamValue> values = DefaultParams(spec);
      if (spec.name == "attention") {
        values[0] = 0.01 + 0.005 * static_cast<double>(i % 7);
      }
      EXPECT_TRUE(
          spec.encode_params(values, std::span<uint8_t>(
                                         records.data() + i * spec.param_bytes,
                                         spec.param_bytes))
              .ok());
    }
    planes.push_back(std::move(records));
  }
  std::vector<std::span<const uint8_t>> spans(planes.begin(), planes.end());
  Args args;
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    args.emplace_back(spec.arg_span(a, n));
    GatherArg(spec, a, spans, 0, n, args.back().data());
  }
  return args;
}

Args GoldenInputs(const KernelSpec& spec) {
  Args args;
  for (const GoldenFile& f : spec.golden.inputs) {
    args.emplace_back(f.bytes.begin(), f.bytes.end());
  }
  return args;
}

std::string NameOf(const ::testing::TestParamInfo<const KernelSpec*>& info) {
  return info.param->name;
}

class NpuSimTest : public ::testing::Test {
 protected:
  void SetUp() override { cpu_ = NewCpuDevice(1); }
  std::unique_ptr<Device> cpu_;
};

class NpuSimEveryKernel
    : public NpuSimTest,
      public ::testing::WithParamInterface<const KernelSpec*> {};

TEST_P(NpuSimEveryKernel, GoldenVectorsBitExact) {
  const KernelSpec& spec = *GetParam();
  auto dev = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ((*dev)->name(), "npu-sim");
  const size_t n = spec.golden.items;
  auto out = RunOn(**dev, spec, n, n, GoldenInputs(spec));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, std::vector<uint8_t>(spec.golden.output.bytes.begin(),
                                       spec.golden.output.bytes.end()));
}

// cpu and npu-sim give the same bytes for every kernel, in both batching
// modes, on the golden inputs and on random ones of an odd batch size (a
// stepped kernel's runs are whole rounds: 8).
TEST_P(NpuSimEveryKernel, SameBytesAsCpu) {
  const KernelSpec& spec = *GetParam();
  const size_t odd = spec.is_stepped() ? 2 * spec.step_lanes() : 7;
  for (bool runlist : {false, true}) {
    config::Config cfg = SimConfig();
    cfg.mutable_xrt()->set_use_runlist(runlist);
    auto sim = NewNpuSimDevice(cfg);
    ASSERT_TRUE(sim.ok()) << sim.status();
    for (const auto& [n, args] :
         {std::pair(spec.golden.items, GoldenInputs(spec)),
          std::pair(odd, Inputs(spec, odd, 11))}) {
      auto want = RunOn(*cpu_, spec, n, n, args);
      auto got = RunOn(**sim, spec, n, n, args);
      ASSERT_TRUE(want.ok()) << want.status();
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(*got, *want)
          << spec.name << " n=" << n << (runlist ? " runlist" : " sequence");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, NpuSimEveryKernel,
                         ::testing::ValuesIn(AllKernels().begin(),
                                             AllKernels().end()),
                         NameOf);

// The DMA path with no compute: what goes in comes back, byte for byte, on
// both backends.
TEST_F(NpuSimTest, PassthroughReturnsItsInput) {
  const KernelSpec& spec = Kernel("passthrough");
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok()) << sim.status();
  for (size_t n : {size_t{1}, size_t{5}, size_t{64}}) {
    const Args in = Inputs(spec, n, static_cast<uint32_t>(n));
    auto got = RunOn(**sim, spec, 64, n, in);
    auto cpu = RunOn(*cpu_, spec, 64, n, in);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    EXPECT_EQ(*got, in[0]) << "n=" << n;
    EXPECT_EQ(*cpu, in[0]) << "n=" << n;
  }
}

struct Case {
  const char* kernel;
  size_t max_items;
  size_t n;
  bool runlist;
};

class NpuSimMatchesCpu : public NpuSimTest,
                         public ::testing::WithParamInterface<Case> {};

TEST_P(NpuSimMatchesCpu, SameBytes) {
  const Case c = GetParam();
  const KernelSpec& spec = Kernel(c.kernel);
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_use_runlist(c.runlist);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok()) << sim.status();
  const Args in = Inputs(spec, c.n, static_cast<uint32_t>(c.n));
  auto want = RunOn(*cpu_, spec, c.max_items, c.n, in);
  auto got = RunOn(**sim, spec, c.max_items, c.n, in);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, *want);
}

INSTANTIATE_TEST_SUITE_P(
    Batches, NpuSimMatchesCpu,
    ::testing::Values(
        Case{"mel", 1, 1, false}, Case{"mel", 64, 5, false},  // padded to 16
        Case{"mel", 256, 256, false},
        Case{"mel", 300, 299, false},  // 256 + 43->64
        Case{"mel", 64, 33, true},     // runlist
        Case{"attention", 64, 3, false}, Case{"attention", 64, 64, false},
        Case{"attention", 8, 7, true}, Case{"passthrough", 300, 299, false},
        Case{"passthrough", 8, 7, true}));

TEST_F(NpuSimTest, ExecutorReusesItsBuffersAcrossRuns) {
  const KernelSpec& mel = Kernel("mel");
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(mel, 32);
  ASSERT_TRUE(ex.ok());
  const uint8_t* in = (*ex)->input(0).data();
  for (uint32_t round = 0; round < 3; ++round) {
    const size_t n = 4 + round * 9;
    const Args data = Inputs(mel, n, round);
    std::memcpy((*ex)->input(0).data(), data[0].data(), data[0].size());
    ASSERT_TRUE((*ex)->Run(n).ok());
    auto want = RunOn(*cpu_, mel, n, n, data);
    ASSERT_TRUE(want.ok());
    EXPECT_TRUE(
        std::equal(want->begin(), want->end(), (*ex)->output().begin()));
    EXPECT_EQ((*ex)->input(0).data(), in);
  }
}

class NpuSimMisuse : public NpuSimTest,
                     public ::testing::WithParamInterface<Misuse> {};

// The prior attempt's symptom: the run reports COMPLETED, Run() succeeds,
// and the output is all zeros. Only the health layer's zero guard can
// catch it, which is why that guard exists.
TEST_P(NpuSimMisuse, OutputIsAllZeros) {
  for (const KernelSpec* spec : AllKernels()) {
    auto sim = NewNpuSimDeviceForTest(SimConfig(), GetParam());
    ASSERT_TRUE(sim.ok()) << sim.status();
    const size_t n = 4;
    auto out = RunOn(**sim, *spec, n, n, Inputs(*spec, n, 7));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, std::vector<uint8_t>(out->size(), 0))
        << spec->name << " misuse " << static_cast<int>(GetParam());
    // Which is which: with a wrong group id real XRT does not hide the BO,
    // it copies it into the connected bank (validate_bo_at_index), so the
    // kernel runs on the right input and its output lands in the copy. The
    // other mistakes leave the NPU nothing to read or run.
    const npusim::Stats st = (*sim)->machine().stats();
    if (GetParam() == Misuse::kDataBoGroupZero) {
      EXPECT_EQ(st.bank_copies, spec->device_args.size() + 1) << spec->name;
      EXPECT_EQ(st.items, n) << spec->name;
    } else {
      EXPECT_EQ(st.bank_copies, 0u) << spec->name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Conventions, NpuSimMisuse,
                         ::testing::Values(Misuse::kDataBoGroupZero,
                                           Misuse::kDataBoNormalFlags,
                                           Misuse::kInstrCountInBytes,
                                           Misuse::kNoInstructionBo,
                                           Misuse::kSkipOutputSync));

TEST_F(NpuSimTest, MissingInputSyncComputesOnStaleData) {
  const KernelSpec& mel = Kernel("mel");
  auto sim = NewNpuSimDeviceForTest(SimConfig(), Misuse::kSkipInputSync);
  ASSERT_TRUE(sim.ok());
  const Args in = Inputs(mel, 4, 3);
  auto got = RunOn(**sim, mel, 4, 4, in);
  auto want = RunOn(*cpu_, mel, 4, 4, in);
  auto stale = RunOn(*cpu_, mel, 4, 4, {std::vector<uint8_t>(in[0].size(), 0)});
  ASSERT_TRUE(got.ok() && want.ok() && stale.ok());
  EXPECT_NE(*got, *want);
  EXPECT_EQ(*got, *stale);  // the device saw the never-synced zeros
}

TEST_F(NpuSimTest, TimeoutFailsRetriesThenRebuildsContext) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(Kernel("mel"), 8);
  ASSERT_TRUE(ex.ok());
  (*sim)->machine().InjectFault({npusim::FaultKind::kTimeout, 2});
  absl::Status first = (*ex)->Run(8);
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(first.message()), HasSubstr("ERT_CMD_STATE_TIMEOUT"));
  EXPECT_THAT(std::string(first.message()), HasSubstr("retries on the same"));
  absl::Status second = (*ex)->Run(8);
  EXPECT_THAT(std::string(second.message()), HasSubstr("rebuilt the hardware"));
  EXPECT_TRUE((*ex)->Run(8).ok());
}

// The timeout path against npu-sim's amdxdna: the backend never aborts
// (npu-sim refuses ERT_ABORT and counts the attempt) and never destroys the
// run in flight (npu-sim would std::abort() this process, as XRT does); it
// waits for the driver's TDR, fails the batch, and the next run reuses the
// buffers on the context the driver restarted in place.
TEST_F(NpuSimTest, TimeoutWaitsForTheTdrNeverAborts) {
  const KernelSpec& mel = Kernel("mel");
  for (bool runlist : {false, true}) {
    config::Config cfg = SimConfig();
    cfg.mutable_xrt()->set_use_runlist(runlist);
    auto sim = NewNpuSimDevice(cfg);
    ASSERT_TRUE(sim.ok());
    auto ex = (*sim)->CreateExecutor(mel, 4);
    ASSERT_TRUE(ex.ok());
    const Args in = Inputs(mel, 4, 11);
    std::memcpy((*ex)->input(0).data(), in[0].data(), in[0].size());
    (*sim)->machine().InjectFault({npusim::FaultKind::kTimeout});
    absl::Status s = (*ex)->Run(4);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("ERT_CMD_STATE_TIMEOUT"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("driver's TDR"));
    const npusim::Stats st = (*sim)->machine().stats();
    EXPECT_EQ(st.abort_refused, 0u) << "the backend tried ERT_ABORT";
    EXPECT_EQ(st.tdr_resets, 1u);
    ASSERT_TRUE((*ex)->Run(4).ok());
    auto want = RunOn(*cpu_, mel, 4, 4, in);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(std::vector<uint8_t>((*ex)->output().begin(),
                                   (*ex)->output().begin() + want->size()),
              *want)
        << "runlist " << runlist;
  }
}

// A command the TDR does not end (tdr_timeout_ms=0, a wedged driver): the
// executor keeps the run, refuses runs while its buffers are the device's,
// and resumes once the command ended.
TEST_F(NpuSimTest, CommandStuckPastTheTdrIsKeptUntilItEnds) {
  const KernelSpec& mel = Kernel("mel");
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  npusim::Settings s = (*sim)->machine().settings();
  s.realtime = true;
  s.watchdog = absl::Hours(1);
  (*sim)->machine().Configure(s);
  auto ex = (*sim)->CreateExecutor(mel, 4);
  ASSERT_TRUE(ex.ok());
  (*sim)->machine().InjectFault({npusim::FaultKind::kTimeout});
  absl::Status first = (*ex)->Run(4);
  EXPECT_THAT(std::string(first.message()), HasSubstr("still in flight"));
  absl::Status second = (*ex)->Run(4);
  EXPECT_EQ(second.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.message()),
              HasSubstr("its buffers cannot be reused until it ends"));
  EXPECT_EQ((*sim)->machine().stats().runs, 1u);  // nothing else submitted
  s.watchdog = absl::Milliseconds(1);             // the driver finally ends it
  (*sim)->machine().Configure(s);
  EXPECT_TRUE((*ex)->Run(4).ok());
  EXPECT_EQ((*sim)->machine().stats().abort_refused, 0u);
}

// Executors of one kernel share its hardware context, which runs one
// command at a time: a hang on one executor also costs the other its
// command (ABORT at the TDR), and both recover on the same context.
TEST_F(NpuSimTest, HangOnOneExecutorAbortsTheCommandQueuedBehindIt) {
  const KernelSpec& mel = Kernel("mel");
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_run_timeout_ms(1000);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  npusim::Settings s = (*sim)->machine().settings();
  s.realtime = true;
  s.watchdog = absl::Milliseconds(300);
  (*sim)->machine().Configure(s);
  auto a = (*sim)->CreateExecutor(mel, 4);
  auto b = (*sim)->CreateExecutor(mel, 4);
  ASSERT_TRUE(a.ok() && b.ok());
  (*sim)->machine().InjectFault({npusim::FaultKind::kTimeout});
  absl::Status sa, sb;
  std::thread ta([&] { sa = (*a)->Run(4); });
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time t0 = absl::Now();
  std::thread tb([&] { sb = (*b)->Run(4); });
  ta.join();
  tb.join();
  EXPECT_THAT(std::string(sa.message()), HasSubstr("ERT_CMD_STATE_TIMEOUT"));
  EXPECT_THAT(std::string(sb.message()), HasSubstr("ERT_CMD_STATE_ABORT"));
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(900));  // at the TDR
  const npusim::Stats st = (*sim)->machine().stats();
  EXPECT_EQ(st.tdr_resets, 1u);
  EXPECT_EQ(st.tdr_aborted, 1u);
  EXPECT_TRUE((*a)->Run(4).ok());
  EXPECT_TRUE((*b)->Run(4).ok());
}

TEST(ParseNpuSimFault, KindsAndRates) {
  auto hang = ParseNpuSimFault("hang:0.05");
  ASSERT_TRUE(hang.ok()) << hang.status();
  EXPECT_EQ(hang->kind, npusim::FaultKind::kTimeout);
  EXPECT_DOUBLE_EQ(hang->rate, 0.05);
  EXPECT_EQ(hang->runs, 0u);  // for the device's life
  for (const char* k : {"error", "zeros", "garbage", "cold", "slow"}) {
    auto f = ParseNpuSimFault(k);
    ASSERT_TRUE(f.ok()) << k << ": " << f.status();
    EXPECT_DOUBLE_EQ(f->rate, 1.0);
  }
  EXPECT_EQ(ParseNpuSimFault("cold")->kind, npusim::FaultKind::kCold);
  for (const char* bad :
       {"", "melt", "hang:0", "hang:1.5", "hang:x", "hang:0.1:2", "mel:hang"}) {
    auto f = ParseNpuSimFault(bad);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(f.status().message()), HasSubstr("KIND[:RATE]"));
  }
}

TEST_F(NpuSimTest, ErrorStateFailsTheRun) {
  for (bool runlist : {false, true}) {
    config::Config cfg = SimConfig();
    cfg.mutable_xrt()->set_use_runlist(runlist);
    auto sim = NewNpuSimDevice(cfg);
    ASSERT_TRUE(sim.ok());
    auto ex = (*sim)->CreateExecutor(Kernel("mel"), 4);
    ASSERT_TRUE(ex.ok());
    (*sim)->machine().InjectFault({npusim::FaultKind::kError});
    absl::Status s = (*ex)->Run(4);
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(s.message()), HasSubstr("ERT_CMD_STATE_ERROR"));
    EXPECT_TRUE((*ex)->Run(4).ok());
  }
}

TEST_F(NpuSimTest, ZerosFaultIsReturnedAsDataForTheGuardToCatch) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(Kernel("mel"), 4);
  ASSERT_TRUE(ex.ok());
  (*sim)->machine().InjectFault({npusim::FaultKind::kZeros});
  ASSERT_TRUE((*ex)->Run(4).ok());
  EXPECT_TRUE(std::all_of((*ex)->output().begin(), (*ex)->output().end(),
                          [](uint8_t b) { return b == 0; }));
}

// Each device is its own simulated NPU: a fault injected into one never
// reaches another in the same process.
TEST_F(NpuSimTest, DevicesDoNotShareAMachine) {
  auto a = NewNpuSimDevice(SimConfig());
  auto b = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(&(*a)->machine(), &(*b)->machine());
  auto ex_a = (*a)->CreateExecutor(Kernel("mel"), 4);
  auto ex_b = (*b)->CreateExecutor(Kernel("mel"), 4);
  ASSERT_TRUE(ex_a.ok() && ex_b.ok());
  (*a)->machine().InjectFault({npusim::FaultKind::kError, 0});
  EXPECT_FALSE((*ex_a)->Run(4).ok());
  EXPECT_TRUE((*ex_b)->Run(4).ok());
  EXPECT_EQ((*b)->machine().stats().runs_executed, 1u);
}

TEST_F(NpuSimTest, StartupErrorsNameTheProblem) {
  const KernelSpec& mel = Kernel("mel");
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_kernel_dir("/nonexistent/kernels");
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(mel, 4);
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("manifest.json"));

  // A package whose instruction binary was replaced after packaging.
  const fs::path dir = fs::path(::testing::TempDir()) / "npu_sim_tampered";
  fs::remove_all(dir);
  fs::copy(DefaultNpuSimKernelDir(), dir, fs::copy_options::recursive);
  fs::copy_file(dir / "mel" / "insts_4.bin", dir / "mel" / "insts_8.bin",
                fs::copy_options::overwrite_existing);
  cfg.mutable_xrt()->set_kernel_dir(dir.string());
  sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  ex = (*sim)->CreateExecutor(mel, 4);
  EXPECT_FALSE(ex.ok());
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("insts_8.bin"));

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
  ex = (*sim)->CreateExecutor(mel, 4);
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ex.status().message()),
              HasSubstr("not an npu-sim xclbin"));
}

// The backend checks the package against the declaration it is asked to
// serve, not only against the registry's copy.
TEST_F(NpuSimTest, PackageMustMoveTheDeclaredBytes) {
  KernelSpec half = Kernel("mel");
  half.inputs[0].item_dims = {200};  // 400 bytes per frame, not 800
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(half, 4);
  EXPECT_EQ(ex.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ex.status().message()),
              HasSubstr("declaration says [400, 80]"));
}

TEST_F(NpuSimTest, ExecutorsOfAKernelShareOneHardwareContext) {
  // Phoenix has 6 contexts; 4 instances of each of two models must fit.
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok());
  std::vector<std::unique_ptr<Executor>> executors;
  for (int i = 0; i < 4; ++i) {
    for (const char* k : {"mel", "attention"}) {
      auto ex = (*sim)->CreateExecutor(Kernel(k), 4);
      ASSERT_TRUE(ex.ok()) << ex.status();
      executors.push_back(*std::move(ex));
    }
  }
  // A rebuild by one executor is followed by the others.
  (*sim)->machine().InjectFault({npusim::FaultKind::kError, 2});
  EXPECT_FALSE(executors[0]->Run(4).ok());
  EXPECT_THAT(std::string(executors[0]->Run(4).message()),
              HasSubstr("rebuilt"));
  for (size_t i = 0; i < executors.size(); i += 2) {
    EXPECT_TRUE(executors[i]->Run(4).ok()) << i;
  }
}

// Runlist mode runs one round of the design (4 items: one per core) per
// run, so it needs that sequence.
TEST_F(NpuSimTest, RunlistNeedsTheOneRoundSequence) {
  const fs::path dir = fs::path(::testing::TempDir()) / "npu_sim_no_n1";
  fs::remove_all(dir);
  ASSERT_TRUE(
      kernelpkg::WriteSimPackage(dir, **txn::DesignFor("mel"), {16, 64}).ok());
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_kernel_dir(dir.string());
  cfg.mutable_xrt()->set_use_runlist(true);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(Kernel("mel"), 4);
  EXPECT_THAT(std::string(ex.status().message()), HasSubstr("N=4"));
}

// A package whose sequences are not whole rounds of the declared design
// (built from another layout) is refused at start-up, naming the size.
TEST_F(NpuSimTest, SequencesMustBeWholeRoundsOfTheDesign) {
  const fs::path dir = fs::path(::testing::TempDir()) / "npu_sim_one_core";
  fs::remove_all(dir);
  txn::Design one_core = **txn::DesignFor("mel");
  one_core.cores = 1;
  ASSERT_TRUE(kernelpkg::WriteSimPackage(dir, one_core, {1, 4, 6}).ok());
  config::Config cfg = SimConfig();
  cfg.mutable_xrt()->set_kernel_dir(dir.string());
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_TRUE(sim.ok());
  auto ex = (*sim)->CreateExecutor(Kernel("mel"), 4);
  ASSERT_FALSE(ex.ok());
  EXPECT_THAT(std::string(ex.status().message()),
              HasSubstr("N=1, not a multiple of the 4 items"));
}

// npu-sim runs each kernel's design as declared: the layout is not a
// setting any more.
TEST_F(NpuSimTest, LayoutIsTheDesignsNotASetting) {
  config::Config cfg = SimConfig();
  cfg.mutable_npu_sim()->set_cores(1);
  auto sim = NewNpuSimDevice(cfg);
  ASSERT_FALSE(sim.ok());
  EXPECT_THAT(std::string(sim.status().message()),
              HasSubstr("KernelSpec::design.cores x .columns"));
}

// Every batch size up to the executor's runs in the buffers allocated once,
// bit-exact against the reference, however the batch is split and padded.
TEST_F(NpuSimTest, EveryBatchSizeRunsInTheBuffersAllocatedOnce) {
  auto sim = NewNpuSimDevice(SimConfig());
  ASSERT_TRUE(sim.ok()) << sim.status();
  const KernelSpec& mel = Kernel("mel");
  constexpr size_t kMax = 40;
  auto ex = (*sim)->CreateExecutor(mel, kMax);
  ASSERT_TRUE(ex.ok()) << ex.status();
  absl::Span<uint8_t> in = (*ex)->input(0);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> want(kMax * mel.output_bytes());
  const uint8_t* ins[] = {in.data()};
  mel.reference(ins, want.data(), kMax);
  const uint8_t* const out = (*ex)->output().data();
  for (size_t n = 1; n <= kMax; ++n) {
    ASSERT_TRUE((*ex)->Run(n).ok()) << "n=" << n;
    EXPECT_EQ(std::vector<uint8_t>(out, out + n * mel.output_bytes()),
              std::vector<uint8_t>(want.begin(),
                                   want.begin() + n * mel.output_bytes()))
        << "n=" << n;
    EXPECT_EQ((*ex)->input(0).data(), in.data()) << "n=" << n;
  }
}

}  // namespace
}  // namespace npuk
