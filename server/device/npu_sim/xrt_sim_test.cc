// The XRT stand-in on its own: overloads, the instruction-stream semantics
// the device tests don't reach, context limits, latency accounting.
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "experimental/xrt_kernel.h"
#include "experimental/xrt_xclbin.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"
#include "kernels/tools/txn/txn.h"
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
  EXPECT_EQ(run.abort(), ERT_CMD_STATE_ABORT);
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
  EXPECT_EQ(
      kernel_(3u, instr, words, in_, out_).wait(std::chrono::milliseconds(1)),
      ERT_CMD_STATE_TIMEOUT);
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
  xrt::bo instr = InstrBo(*txn::BuildSequence(MelDesign(), 1));
  xrt::runlist list(ctx_);
  std::vector<xrt::run> runs;
  for (size_t i = 0; i < 4; ++i) {
    xrt::run r(kernel_);
    r.set_arg(0, 3u);
    r.set_arg(1, instr);
    r.set_arg(2, static_cast<uint32_t>(instr.size() / 4));
    r.set_arg(3, xrt::bo(in_, 800, i * 800));
    r.set_arg(4, xrt::bo(out_, 80, i * 80));
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
