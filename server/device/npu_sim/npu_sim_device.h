// The npu-sim backend: the xrt backend's code compiled against the in-tree
// XRT stand-in (include/), which enforces XRT/NPU calling conventions, runs
// the instruction streams and the reference kernels, and models Phoenix
// latency. See server/device/npu_sim/README.md.
#ifndef NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_
#define NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "config.pb.h"
#include "server/device/device.h"
#include "server/device/xrt/xrt_options.h"

namespace npuk {

// Configures the simulated device from config.npu_sim() and opens it.
// Kernel packages come from config.xrt().kernel_dir() or, when that is
// empty, the first of $NPUK_KERNEL_DIR, <exe dir>/../share/npukd/kernels
// and the build tree that holds a mel package.
absl::StatusOr<std::unique_ptr<Device>> NewNpuSimDevice(
    const config::Config& config);

// As above with a deliberate XRT calling mistake. For tests only.
absl::StatusOr<std::unique_ptr<Device>> NewNpuSimDeviceForTest(
    const config::Config& config, xrt_backend::Misuse misuse);

// Where NewNpuSimDevice looks when config.xrt().kernel_dir() is empty.
std::filesystem::path DefaultNpuSimKernelDir();

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_NPU_SIM_NPU_SIM_DEVICE_H_
