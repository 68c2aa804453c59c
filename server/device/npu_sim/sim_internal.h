// The simulator's state behind the XRT handles. Internal to npu_sim.
#ifndef NPUK_SERVER_DEVICE_NPU_SIM_SIM_INTERNAL_H_
#define NPUK_SERVER_DEVICE_NPU_SIM_SIM_INTERNAL_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ert.h"
#include "experimental/xrt_xclbin.h"
#include "kernels/registry/kernel_spec.h"
#include "kernels/tools/txn/txn.h"
#include "npusim/machine.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"

namespace npusim {

// Parsed simulator xclbin (format in server/device/npu_sim/README.md).
struct XclbinImpl {
  struct Arg {
    std::string name;
    std::string kind;  // "scalar" or "bo"
    int group = -1;
  };
  struct Stream {
    npuk::txn::Direction dir;
    uint32_t channel;
    std::string fifo;
    uint32_t item_bytes;
    uint32_t arg;  // device argument: inputs first, the output last
  };
  xrt::uuid uuid;
  std::string kernel_name;
  // The core program: the registered kernel the `core` line names, whose
  // reference the simulated core runs.
  const npuk::KernelSpec* core = nullptr;
  std::map<int, Arg> args;
  std::vector<Stream> streams;
};

struct DeviceImpl {
  std::shared_ptr<Machine> machine;
  absl::Mutex mu;
  std::map<std::string, xrt::xclbin> registered ABSL_GUARDED_BY(mu);
  uint64_t next_address ABSL_GUARDED_BY(mu) = 0x4000'0000;
};

// One hardware context: the firmware executes its commands one at a time,
// in submission order (the queue is modelled by `busy_until`), and a
// command that never finishes wedges it until the TDR.
struct HwContextImpl {
  ~HwContextImpl();
  xrt::device device;
  xrt::xclbin xclbin;
  xrt::hw_context::access_mode mode = xrt::hw_context::access_mode::shared;

  // Guards the fields below and the command state of every run on this
  // context (RunImpl's fields marked so).
  absl::Mutex mu;
  // When the last queued command completes (realtime).
  absl::Time busy_until ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  // Commands in flight (completing after `now`), for Stats::max_queued.
  std::vector<absl::Time> in_flight ABSL_GUARDED_BY(mu);
  // The hung command wedging the context, until the TDR ends it. Runs
  // remember the wedge they belong to; once it has ended, the cause reads
  // ERT_CMD_STATE_TIMEOUT and the commands queued behind it ABORT.
  bool wedged ABSL_GUARDED_BY(mu) = false;
  uint64_t wedge_id ABSL_GUARDED_BY(mu) = 0;
  absl::Time wedge_started ABSL_GUARDED_BY(mu);
  absl::Duration wedge_waited ABSL_GUARDED_BY(mu);  // without realtime
};

// Host and device copies of a BO's memory; sub-buffers share it.
struct BoStorage {
  std::vector<uint8_t> host;
  std::vector<uint8_t> device;
};

struct BoImpl {
  std::shared_ptr<BoStorage> storage;
  size_t offset = 0;
  size_t size = 0;
  uint64_t address = 0;
  xrt::bo::flags flags = xrt::bo::flags::normal;
  uint32_t group = 0;
  std::shared_ptr<Machine> machine;
  uint8_t* device_bytes() { return storage->device.data() + offset; }
  uint8_t* host_bytes() { return storage->host.data() + offset; }
};

struct KernelImpl {
  xrt::hw_context ctx;
  const XclbinImpl* xclbin = nullptr;
};

struct Scalar {
  uint64_t raw = 0;
  size_t bytes = 0;
};
using ArgValue = std::variant<std::monostate, Scalar, xrt::bo>;

struct RunImpl {
  // A run destroyed while its command is in flight aborts the process, as
  // in XRT (xrt_kernel.cpp ~run_impl: "xrt::run destructed while command is
  // still in progress", std::abort() unless an exception is unwinding).
  ~RunImpl();
  std::shared_ptr<KernelImpl> kernel;
  std::map<int, ArgValue> args;
  // Guarded by the context's mu (HwContextImpl::mu).
  ert_cmd_state state = ERT_CMD_STATE_NEW;
  absl::Time done_at;        // modelled completion (wall)
  uint64_t wedge = 0;        // the wedge this command is stuck in, 0 = none
  bool wedge_cause = false;  // it hung; otherwise it queued behind
};

// Executes one run now: the instruction stream's shim DMA transfers, the
// core, `fault` (may be null). Returns the final state and the modelled
// device time (launch latency `launch` + DMA + a kSlow fault's extra); sets
// *hung for a run that never finishes. REQUIRES: kTimeout faults are
// handled by the caller.
ert_cmd_state Execute(RunImpl& run, const Fault* fault, absl::Duration launch,
                      absl::Duration* modelled, bool* hung);

struct RunlistImpl {
  xrt::hw_context ctx;
  std::vector<xrt::run> runs;
  bool executed = false;
};

}  // namespace npusim

#endif  // NPUK_SERVER_DEVICE_NPU_SIM_SIM_INTERNAL_H_
