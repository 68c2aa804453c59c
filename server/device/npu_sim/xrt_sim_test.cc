// The XRT stand-in on its own: overloads, the instruction-stream semantics
// the device tests don't reach, context limits, latency accounting.
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "experimental/xrt_kernel.h"
#include "experimental/xrt_xclbin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn/txn.h"
#include "kernels/vec/cycle_model.h"
#include "npusim/machine.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_hw_context.h"
#include "xrt/xrt_kernel.h"

namespace {

namespace txn = npuk::txn;
using ::testing::HasSubstr;

// Newest XRT has xclbin(const std::string&) and xclbin(std::string_view):
// a string literal is ambiguous, as it is on real XRT.
static_assert(!std::is_constructible_v<xrt::xclbin, const char*>);
static_assert(std::is_constructible_v<xrt::xclbin, std::string>);

const std::string kMelXclbin =
    std::string(NPUK_SIM_KERNEL_DIR) + "/mel/mel.xclbin";

const txn::Design& MelDesign() { return **txn::DesignFor("mel"); }

// A sim xclbin for `core` whose input stream moves `in_bytes` per item
// (mel's declaration says 800) and whose streams name their arguments.
std::string XclbinText(const std::string& core, int in_bytes) {
  return "npu-sim-xclbin 1\n"
         "uuid 0123456789abcdef0123456789abcdef\n"
         "kernel MLIR_AIE\n"
         "core " +
         core +
         "\n"
         "arg 0 opcode scalar\narg 1 instr bo 1\narg 2 ninstr scalar\n"
         "arg 3 bo0 bo 3\narg 4 bo1 bo 4\n"
         "stream s2mm 0 of_out 80 1\n"
         "stream mm2s 0 of_in " +
         std::to_string(in_bytes) + " 0\n";
}

class XrtSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    device_ = xrt::device(0u);
    machine_ = npusim::MachineOf(device_);
    npusim::Settings s;
    s.realtime = false;
    machine_->Configure(s);
    xclbin_ = xrt::xclbin(kMelXclbin);
    ctx_ = xrt::hw_context(device_, device_.register_xclbin(xclbin_));
    kernel_ = xrt::kernel(ctx_, "MLIR_AIE");
    in_ = xrt::bo(device_, 4 * 800, xrt::bo::flags::host_only,
                  kernel_.group_id(3));
    out_ = xrt::bo(device_, 4 * 80, xrt::bo::flags::host_only,
                   kernel_.group_id(4));
    auto* samples = in_.map<int16_t*>();
    for (int i = 0; i < 4 * 400; ++i) samples[i] = static_cast<int16_t>(i * 37);
    in_.sync(XCL_BO_SYNC_BO_TO_DEVICE);
  }

  xrt::bo InstrBo(const std::vector<uint32_t>& words) {
    xrt::bo bo(device_, words.size() * 4, xrt::bo::flags::cacheable,
               kernel_.group_id(1));
    std::memcpy(bo.map(), words.data(), words.size() * 4);
    bo.sync(XCL_BO_SYNC_BO_TO_DEVICE);
    return bo;
  }

  std::vector<int8_t> Expected() {
    std::vector<int8_t> want(4 * 80);
    const uint8_t* in[] = {in_.map<const uint8_t*>()};
    npuk::FindKernel("mel")->reference(
        in, reinterpret_cast<uint8_t*>(want.data()), 4);
    return want;
  }
  std::vector<int8_t> Got() {
    out_.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
    return {out_.map<int8_t*>(), out_.map<int8_t*>() + 4 * 80};
  }

  std::shared_ptr<npusim::Machine> machine_;
  xrt::device device_;
  xrt::xclbin xclbin_;
  xrt::hw_context ctx_;
  xrt::kernel kernel_;
  xrt::bo in_, out_;
};

TEST_F(XrtSimTest, CorrectCallRunsTheKernel) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  auto run =
      kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), Expected());
  EXPECT_EQ(machine_->stats().items, 4u);
  EXPECT_EQ(machine_->stats().runs_executed, 1u);
  EXPECT_GE(machine_->stats().modelled_device, absl::Microseconds(110));
}

// Core compute comes from the cycle model of the kernel code the cores run,
// over the cores of the kernel's design (KernelSpec::design: a column of 4),
// not a setting: the scalar entries cost more than the vector kernels, and
// the run's device time covers max(DMA, compute).
TEST_F(XrtSimTest, CoreComputeIsPricedByTheCycleModelOverTheDesignsCores) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  auto compute_of = [&](bool vector) {
    npusim::Settings s = machine_->settings();
    s.vector_kernels = vector;
    machine_->Configure(s);
    machine_->ResetStats();
    auto run =
        kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
    EXPECT_EQ(run.wait(), ERT_CMD_STATE_COMPLETED);
    EXPECT_EQ(Got(), Expected());
    const npusim::Stats st = machine_->stats();
    EXPECT_GE(st.modelled_device, s.run_latency + st.modelled_compute);
    return st.compute_cycles;
  };
  const npuk::KernelSpec& mel = *npuk::FindKernel("mel");
  ASSERT_EQ(mel.design.granule(), 4u);
  const double vector = compute_of(true);
  const double scalar = compute_of(false);
  EXPECT_GT(vector, 0);
  EXPECT_GT(scalar, vector);
  // 4 frames over the design's 4 cores: one frame per core.
  EXPECT_DOUBLE_EQ(
      scalar, npuk::vec::CoreCycles(
                  npuk::vec::CostOf("mel", npuk::vec::Variant::kScalar), 4, 4));
  EXPECT_DOUBLE_EQ(
      vector, npuk::vec::CoreCycles(
                  npuk::vec::CostOf("mel", npuk::vec::Variant::kVector), 4, 4));
}

// npu-sim prices every registered kernel's core compute from the cycle
// model, none at zero, and every kernel has a vector kernel that the model
// prices below its scalar entry.
TEST(CycleModelRegistryTest, EveryRegisteredKernelIsPriced) {
  using npuk::vec::CostOf;
  using npuk::vec::Variant;
  for (const npuk::KernelSpec* spec : npuk::AllKernels()) {
    SCOPED_TRACE(spec->name);
    const npuk::vec::KernelCost scalar = CostOf(spec->name, Variant::kScalar);
    const npuk::vec::KernelCost vector = CostOf(spec->name, Variant::kVector);
    ASSERT_TRUE(scalar.known);
    ASSERT_TRUE(vector.known);
    EXPECT_GT(scalar.cycles_per_call, 0);
    EXPECT_LT(vector.cycles_per_call / vector.items_per_call,
              scalar.cycles_per_call / scalar.items_per_call);
  }
  // The band count and the log stage change the price: the 128-band
  // filterbank has more weights (and the split ones) than the 80-band one.
  for (Variant v : {Variant::kScalar, Variant::kVector}) {
    const double mel = CostOf("mel", v).cycles_per_call;
    const double mel_pcm = CostOf("mel_pcm", v).cycles_per_call;
    EXPECT_GT(CostOf("mel128", v).cycles_per_call, mel);
    EXPECT_NE(mel_pcm, mel);
    EXPECT_GT(CostOf("mel128_pcm", v).cycles_per_call, mel_pcm);
  }
}

// The mem tile hands its cores a round (one item each) at a time: a run
// that is not a multiple of the design's 4 items never completes.
TEST_F(XrtSimTest, PartialRoundHangsUntilTimeout) {
  txn::Encoder e;
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kS2MM, 0, 0, 1, 0, 160, true})
          .ok());
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kMM2S, 0, 1, 0, 0, 1600}).ok());
  txn::DmaWait(e, 0, txn::Direction::kS2MM, 0);
  xrt::bo instr = InstrBo(e.Finish());
  auto run =
      kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
  EXPECT_EQ(run.wait(std::chrono::milliseconds(5)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_TIMEOUT);  // the TDR ended it
  EXPECT_EQ(machine_->stats().tdr_resets, 1u);
}

TEST_F(XrtSimTest, SequenceWithoutOutputWaitLeavesZeros) {
  txn::Encoder e;
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kS2MM, 0, 0, 1, 0, 320, true})
          .ok());
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kMM2S, 0, 1, 0, 0, 3200}).ok());
  xrt::bo instr = InstrBo(e.Finish());
  auto run =
      kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_COMPLETED);  // as on hardware
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
}

TEST_F(XrtSimTest, PartialItemHangsUntilTimeout) {
  txn::Encoder e;
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kS2MM, 0, 0, 1, 0, 320, true})
          .ok());
  ASSERT_TRUE(
      txn::DmaMemcpyNd(e, {0, txn::Direction::kMM2S, 0, 1, 0, 0, 3000}).ok());
  txn::DmaWait(e, 0, txn::Direction::kS2MM, 0);
  xrt::bo instr = InstrBo(e.Finish());
  auto run =
      kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
  EXPECT_EQ(run.wait(std::chrono::milliseconds(5)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(run.state(), ERT_CMD_STATE_RUNNING);  // still in flight
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_TIMEOUT);   // the TDR ended it
  EXPECT_EQ(run.state(), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(machine_->stats().tdr_resets, 1u);
}

TEST_F(XrtSimTest, WrongOpcodeIsAnError) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  auto run =
      kernel_(1u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_);
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_ERROR);
}

TEST_F(XrtSimTest, FaultsShowAsStatesAndBytes) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  machine_->InjectFault({npusim::FaultKind::kError});
  EXPECT_EQ(kernel_(3u, instr, words, in_, out_).wait(), ERT_CMD_STATE_ERROR);
  machine_->InjectFault({npusim::FaultKind::kTimeout});
  {
    auto hung = kernel_(3u, instr, words, in_, out_);
    EXPECT_EQ(hung.wait(std::chrono::milliseconds(1)), ERT_CMD_STATE_TIMEOUT);
    EXPECT_EQ(hung.wait(), ERT_CMD_STATE_TIMEOUT);  // ended by the TDR
  }
  machine_->InjectFault({npusim::FaultKind::kGarbage});
  EXPECT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_NE(Got(), Expected());
  machine_->InjectFault({npusim::FaultKind::kZeros});
  EXPECT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
  EXPECT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), Expected());
}

TEST_F(XrtSimTest, UnreadableInstructionsExecuteNothingButComplete) {
  std::vector<uint32_t> words = *txn::BuildSequence(MelDesign(), 4);
  const uint32_t n = static_cast<uint32_t>(words.size());
  // Garbled: an unknown opcode where the first op starts.
  std::vector<uint32_t> garbled = words;
  garbled[4] = 0x5A;
  xrt::bo bad = InstrBo(garbled);
  EXPECT_EQ(kernel_(3u, bad, n, in_, out_).wait(), ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
  // Right words in a host_only BO: the firmware cannot fetch them.
  xrt::bo wrong_kind(device_, words.size() * 4, xrt::bo::flags::host_only,
                     kernel_.group_id(1));
  std::memcpy(wrong_kind.map(), words.data(), words.size() * 4);
  wrong_kind.sync(XCL_BO_SYNC_BO_TO_DEVICE);
  EXPECT_EQ(kernel_(3u, wrong_kind, n, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
  // Right BO, never synced to the device.
  xrt::bo unsynced(device_, words.size() * 4, xrt::bo::flags::cacheable,
                   kernel_.group_id(1));
  std::memcpy(unsynced.map(), words.data(), words.size() * 4);
  EXPECT_EQ(kernel_(3u, unsynced, n, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
  EXPECT_EQ(machine_->stats().runs_executed, 0u);
}

TEST_F(XrtSimTest, SlowFaultAddsModelledTime) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  ASSERT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  const absl::Duration normal = machine_->stats().modelled_device;
  machine_->ResetStats();
  machine_->InjectFault({npusim::FaultKind::kSlow, 1, absl::Milliseconds(3)});
  ASSERT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().modelled_device, normal + absl::Milliseconds(3));
  EXPECT_EQ(Got(), Expected());
}

TEST_F(XrtSimTest, RunlistReportsTheFailedRun) {
  // Each run is one round of the design (4 frames) over the same buffers.
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  xrt::runlist list(ctx_);
  std::vector<xrt::run> runs;
  for (size_t i = 0; i < 4; ++i) {
    xrt::run r(kernel_);
    r.set_arg(0, 3u);
    r.set_arg(1, instr);
    r.set_arg(2, static_cast<uint32_t>(instr.size() / 4));
    r.set_arg(3, xrt::bo(in_, 4 * 800, 0));
    r.set_arg(4, xrt::bo(out_, 4 * 80, 0));
    list.add(r);
  }
  list.execute();
  EXPECT_EQ(list.wait(std::chrono::milliseconds(0)),
            std::cv_status::no_timeout);
  EXPECT_EQ(Got(), Expected());
  EXPECT_EQ(machine_->stats().runlist_runs, 4u);

  machine_->InjectFault({npusim::FaultKind::kError});
  list.reset();
  list.add(xrt::run(kernel_));  // args unset: opcode 0, an error anyway
  list.execute();
  EXPECT_THROW(list.wait(std::chrono::milliseconds(0)),
               xrt::runlist::command_error);
}

TEST_F(XrtSimTest, SixContextsLikePhoenix) {
  std::vector<xrt::hw_context> more;
  const xrt::uuid id = xclbin_.get_uuid();
  for (int i = 1; i < npusim::kMaxContexts; ++i) more.emplace_back(device_, id);
  EXPECT_THROW(xrt::hw_context(device_, id), std::system_error);
  more.pop_back();
  EXPECT_NO_THROW(xrt::hw_context(device_, id));
}

TEST_F(XrtSimTest, RefusesForeignXclbin) {
  EXPECT_THROW(xrt::xclbin(std::string_view("\x00\x01xclbin2")),
               std::runtime_error);
  EXPECT_THROW(xrt::xclbin(std::string("/nonexistent.xclbin")),
               std::runtime_error);
  EXPECT_THROW(xrt::kernel(ctx_, "DPU_PDI_0"), std::runtime_error);
  EXPECT_THROW(xrt::device(1u), std::runtime_error);
}

TEST_F(XrtSimTest, EachDeviceIsItsOwnMachine) {
  xrt::device other(0u);
  std::shared_ptr<npusim::Machine> theirs = npusim::MachineOf(other);
  EXPECT_NE(theirs.get(), machine_.get());
  // A fault on the other device does not reach this one.
  theirs->InjectFault({npusim::FaultKind::kError, 0});
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  EXPECT_EQ(
      kernel_(3u, instr, static_cast<uint32_t>(instr.size() / 4), in_, out_)
          .wait(),
      ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), Expected());
  EXPECT_EQ(theirs->stats().runs, 0u);
  // Nor do its hardware contexts count against this one's six.
  std::vector<xrt::hw_context> theirs_ctx;
  const xrt::uuid id = other.register_xclbin(xclbin_);
  for (int i = 0; i < npusim::kMaxContexts; ++i) {
    theirs_ctx.emplace_back(other, id);
  }
  EXPECT_NO_THROW(xrt::hw_context(device_, xclbin_.get_uuid()));
}

// amdxdna has no ERT_ABORT: XRT's abort submission fails and the command
// stays in flight until the driver's TDR ends it, after which the context
// (restarted in place) runs the next command normally.
TEST_F(XrtSimTest, AbortIsRefusedAndTheTdrEndsTheHungRun) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  machine_->InjectFault({npusim::FaultKind::kTimeout});
  auto hung = kernel_(3u, instr, words, in_, out_);
  EXPECT_EQ(hung.wait(std::chrono::milliseconds(500)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(hung.state(), ERT_CMD_STATE_RUNNING);
  try {
    hung.abort();
    FAIL() << "ERT_ABORT was accepted";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EOPNOTSUPP);
    EXPECT_THAT(e.what(), HasSubstr("err=-95"));
  }
  EXPECT_EQ(machine_->stats().abort_refused, 1u);
  EXPECT_EQ(hung.state(),
            ERT_CMD_STATE_RUNNING);  // the refusal changed nothing
  // Waited on for the rest of the 2 s TDR (virtual time: not realtime).
  EXPECT_EQ(hung.wait(std::chrono::milliseconds(1500)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(hung.state(), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(machine_->stats().tdr_resets, 1u);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));  // output untouched
  // Once ended, abort() just reports the state.
  EXPECT_EQ(hung.abort(), ERT_CMD_STATE_TIMEOUT);
  auto next = kernel_(3u, instr, words, in_, out_);
  EXPECT_EQ(next.wait(), ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), Expected());
}

// One command at a time per context: a command submitted behind a hung one
// never executes, and the TDR aborts it (amd/xdna-driver PR #580).
TEST_F(XrtSimTest, CommandsQueuedBehindAHungOneAreAborted) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  machine_->InjectFault({npusim::FaultKind::kTimeout});
  auto hung = kernel_(3u, instr, words, in_, out_);
  xrt::kernel other(ctx_, "MLIR_AIE");  // a second executor's kernel
  auto behind = other(3u, instr, words, in_, out_);
  EXPECT_EQ(behind.state(), ERT_CMD_STATE_QUEUED);
  EXPECT_EQ(behind.wait(std::chrono::milliseconds(100)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_THROW(behind.start(), std::runtime_error);  // not done: can't launch
  EXPECT_EQ(behind.wait(), ERT_CMD_STATE_ABORT);
  EXPECT_EQ(hung.wait(std::chrono::milliseconds(1)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(hung.state(), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(machine_->stats().tdr_aborted, 1u);
  EXPECT_EQ(machine_->stats().runs_executed, 0u);
  EXPECT_EQ(Got(), std::vector<int8_t>(320, 0));
  // Both ended: they may be started again.
  behind.start();
  EXPECT_EQ(behind.wait(), ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(Got(), Expected());
}

// XRT std::abort()s when a run whose command is in flight is destroyed
// (xrt_kernel.cpp ~run_impl), which is why the backend never lets one go.
TEST_F(XrtSimTest, DestroyingARunInFlightAbortsTheProcess) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        machine_->InjectFault({npusim::FaultKind::kTimeout});
        auto hung = kernel_(3u, instr, words, in_, out_);
        hung.wait(std::chrono::milliseconds(1));
      },
      "destructed while command is still in progress");
}

TEST_F(XrtSimTest, OneCommandAtATimePerContextAtTheCommandFloor) {
  npusim::Settings s;
  s.realtime = true;
  s.run_latency = absl::Microseconds(100);
  s.command_floor = absl::Milliseconds(3);  // exaggerated to be measurable
  machine_->Configure(s);
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  auto batch = [&](std::vector<xrt::kernel*> kernels) {
    const absl::Time t0 = absl::Now();
    std::vector<xrt::run> runs;
    for (int i = 0; i < 4; ++i) {
      for (xrt::kernel* k : kernels)
        runs.push_back((*k)(3u, instr, words, in_, out_));
    }
    for (auto& r : runs) EXPECT_EQ(r.wait(), ERT_CMD_STATE_COMPLETED);
    return absl::Now() - t0;
  };
  // Two kernels (executors) on one context share its queue: 8 commands,
  // at least 7 floors apart.
  xrt::kernel second(ctx_, "MLIR_AIE");
  const absl::Duration shared = batch({&kernel_, &second});
  EXPECT_GE(shared, absl::Milliseconds(21));
  EXPECT_GE(machine_->stats().max_queued, 2u);
  // On two contexts the queues run side by side: 4 commands each.
  xrt::hw_context ctx2(device_, xclbin_.get_uuid());
  xrt::kernel on2(ctx2, "MLIR_AIE");
  const absl::Duration parallel = batch({&kernel_, &on2});
  EXPECT_GE(parallel, absl::Milliseconds(9));
  EXPECT_LT(parallel, shared);
  EXPECT_EQ(Got(), Expected());
}

TEST_F(XrtSimTest, ColdStartAfterAutosuspend) {
  npusim::Settings s;
  s.realtime = false;
  s.autosuspend = absl::Milliseconds(30);
  machine_->Configure(s);
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  ASSERT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().cold_starts, 0u);  // the context woke it
  const absl::Duration warm = machine_->stats().modelled_device;
  absl::SleepFor(absl::Milliseconds(40));  // idle past the delay
  machine_->ResetStats();
  ASSERT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().cold_starts, 1u);
  EXPECT_EQ(machine_->stats().modelled_device, warm + s.cold_start);
  // The cold fault: as if it had autosuspended.
  machine_->ResetStats();
  machine_->InjectFault({npusim::FaultKind::kCold});
  ASSERT_EQ(kernel_(3u, instr, words, in_, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().cold_starts, 1u);
  EXPECT_EQ(Got(), Expected());
}

TEST_F(XrtSimTest, ColdStartTakesRealTime) {
  npusim::Settings s;
  s.realtime = true;
  s.cold_start = absl::Milliseconds(60);
  machine_->Configure(s);
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  machine_->InjectFault({npusim::FaultKind::kCold});
  const absl::Time t0 = absl::Now();
  auto run = kernel_(3u, instr, words, in_, out_);
  // A caller's timeout shorter than the cold start gives up first.
  EXPECT_EQ(run.wait(std::chrono::milliseconds(5)), ERT_CMD_STATE_TIMEOUT);
  EXPECT_EQ(run.wait(), ERT_CMD_STATE_COMPLETED);
  EXPECT_GE(absl::Now() - t0, absl::Milliseconds(60));
}

// With a wrong group id XRT does not refuse the BO: it warns and hands the
// kernel a copy in the connected bank (validate_bo_at_index). An input so
// copied is read correctly; an output so copied is lost to the caller.
TEST_F(XrtSimTest, WrongBankIsCopiedIntoTheConnectedBank) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  xrt::bo in0(device_, 4 * 800, xrt::bo::flags::host_only, 0);
  std::memcpy(in0.map(), in_.map(), 4 * 800);
  in0.sync(XCL_BO_SYNC_BO_TO_DEVICE);
  EXPECT_EQ(kernel_(3u, instr, words, in0, out_).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().bank_copies, 1u);
  EXPECT_EQ(Got(), Expected());  // not zeros: the copy had the input
  xrt::bo out0(device_, 4 * 80, xrt::bo::flags::host_only, 0);
  EXPECT_EQ(kernel_(3u, instr, words, in_, out0).wait(),
            ERT_CMD_STATE_COMPLETED);
  EXPECT_EQ(machine_->stats().bank_copies, 2u);
  EXPECT_EQ(machine_->stats().items, 8u);  // the kernel ran both times
  out0.sync(XCL_BO_SYNC_BO_FROM_DEVICE);
  EXPECT_EQ(std::vector<int8_t>(out0.map<int8_t*>(), out0.map<int8_t*>() + 320),
            std::vector<int8_t>(320, 0));  // its result went to the copy
}

TEST_F(XrtSimTest, RateFaultsHitAFractionOfRuns) {
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  const uint32_t words = static_cast<uint32_t>(instr.size() / 4);
  machine_->Seed(7);
  machine_->InjectFault({npusim::FaultKind::kError, 0, {}, 0.25});
  int errors = 0;
  for (int i = 0; i < 400; ++i) {
    errors +=
        kernel_(3u, instr, words, in_, out_).wait() == ERT_CMD_STATE_ERROR;
  }
  EXPECT_GT(errors, 60);
  EXPECT_LT(errors, 140);
}

TEST_F(XrtSimTest, RunlistAfterAHangIsAbortedByTheTdr) {
  // Each run is one round of the design (4 frames) over the same buffers.
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 4));
  xrt::runlist list(ctx_);
  std::vector<xrt::run> runs;
  for (size_t i = 0; i < 4; ++i) {
    xrt::run r(kernel_);
    r.set_arg(0, 3u);
    r.set_arg(1, instr);
    r.set_arg(2, static_cast<uint32_t>(instr.size() / 4));
    r.set_arg(3, xrt::bo(in_, 4 * 800, 0));
    r.set_arg(4, xrt::bo(out_, 4 * 80, 0));
    runs.push_back(r);
    list.add(r);
  }
  machine_->InjectFault({npusim::FaultKind::kTimeout});
  list.execute();
  EXPECT_EQ(list.wait(std::chrono::milliseconds(10)), std::cv_status::timeout);
  try {
    list.wait(std::chrono::milliseconds(0));
    FAIL() << "a hung runlist completed";
  } catch (const xrt::runlist::command_error& e) {
    EXPECT_EQ(e.get_command_state(), ERT_CMD_STATE_TIMEOUT);
  }
  EXPECT_EQ(runs[0].state(), ERT_CMD_STATE_TIMEOUT);
  for (size_t i = 1; i < 4; ++i)
    EXPECT_EQ(runs[i].state(), ERT_CMD_STATE_ABORT);
}

TEST_F(XrtSimTest, CoreMustBeARegisteredKernel) {
  EXPECT_NO_THROW(xrt::xclbin(std::string_view(XclbinText("mel", 800))));
  try {
    xrt::xclbin x(std::string_view(XclbinText("fft", 800)));
    FAIL() << "an unknown core was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no registered kernel \"fft\""));
    EXPECT_THAT(e.what(), HasSubstr(npuk::KernelNames()));
  }
}

TEST_F(XrtSimTest, StreamsMustMatchTheDeclaration) {
  try {
    xrt::xclbin x(std::string_view(XclbinText("mel", 640)));
    FAIL() << "a stream of the wrong size was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("640 bytes per item"));
    EXPECT_THAT(e.what(), HasSubstr("mel declaration"));
  }
}

}  // namespace
