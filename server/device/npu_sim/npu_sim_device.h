// The npu-sim backend: the xrt backend's code compiled against the in-tree
// XRT stand-in (include/), which enforces XRT/NPU calling conventions, runs
// the instruction streams and the kernels' references, and models Phoenix
// latency. See server/device/npu_sim/README.md.
#ifndef NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_
#define NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_

#include <filesystem>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "config.pb.h"
#include "server/device/device.h"
#include "server/device/xrt/xrt_misuse.h"

namespace npusim {
class Machine;  // npusim/machine.h (npuk_npusim_xrt)
struct Fault;
}  // namespace npusim

namespace npuk {

// A device on its own simulated NPU: each NewNpuSimDevice is a separate
// npusim::Machine (settings, fault schedule, counters, the six hardware
// contexts), owned by the device and its executors.
class NpuSimDevice : public Device {
 public:
  // The simulated NPU, for tests and benchmarks: configure it, inject
  // faults, read its counters. Valid as long as the device.
  virtual npusim::Machine& machine() = 0;
};

// A fault of the simulated NPU itself, from --npu_sim_fault=KIND[:RATE]
// (config npu_sim.fault): KIND is hang (the command never finishes; the
// TDR ends it after 2 s), error (ERT_CMD_STATE_ERROR), zeros, garbage,
// cold (the run pays a cold start, as after autosuspend) or slow (+50 ms);
// RATE in (0, 1] is the chance per command, default 1. Unlike --fault,
// which wraps any backend in a decorator, these go through the xrt
// backend's own failure handling as the hardware's would. Errors
// (INVALID_ARGUMENT) quote the text and list the kinds.
absl::StatusOr<npusim::Fault> ParseNpuSimFault(std::string_view text);

// Configures a simulated device from config.npu_sim() and opens it.
// Kernel packages come from config.xrt().kernel_dir() or, when that is
// empty, DefaultNpuSimKernelDir().
absl::StatusOr<std::unique_ptr<NpuSimDevice>> NewNpuSimDevice(
    const config::Config& config);

// As above with a deliberate XRT calling mistake. For tests only.
absl::StatusOr<std::unique_ptr<NpuSimDevice>> NewNpuSimDeviceForTest(
    const config::Config& config, xrt_backend::Misuse misuse);

// Where NewNpuSimDevice looks when config.xrt().kernel_dir() is empty: the
// first of $NPUK_KERNEL_DIR, <exe dir>/../share/npukd/kernels when it holds
// a package for every registered kernel, and the build tree's packages.
std::filesystem::path DefaultNpuSimKernelDir();

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_
