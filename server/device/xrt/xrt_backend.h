// The xrt backend on real XRT >= 2.17 and the amdxdna driver. Only present
// when npukd was built with XRT (NPUK_HAVE_XRT).
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_BACKEND_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_BACKEND_H_

#include <memory>

#include "absl/status/statusor.h"
#include "config.pb.h"
#include "server/device/device.h"

namespace npuk {

// Checks the host (device node, permissions, RLIMIT_MEMLOCK), opens
// xrt::device(config.xrt().device_index()) and serves the kernel packages
// in config.xrt().kernel_dir() (default /usr/lib/npukd/kernels, or
// $NPUK_KERNEL_DIR).
absl::StatusOr<std::unique_ptr<Device>> NewXrtDevice(
    const config::Config& config);

}  // namespace npuk

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_BACKEND_H_
