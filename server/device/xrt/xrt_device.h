// The XRT backend, written against the real XRT >= 2.17 API
// (reference/xrt.md) and compiled twice: against real XRT (npuk_device_xrt)
// and against npu-sim's stand-in headers (npuk_device_npu_sim). Each build
// defines NPUK_XRT_FLAVOR privately so both can link into one binary.
// Include only from the backend's own sources; the daemon uses
// xrt_backend.h / npu_sim_device.h.
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/device/device.h"
#include "server/device/xrt/xrt_options.h"

#ifndef NPUK_XRT_FLAVOR
#error "NPUK_XRT_FLAVOR must name the XRT build (real or npusim)"
#endif

namespace npuk::xrt_backend {
inline namespace NPUK_XRT_FLAVOR {

// Opens the device. Kernel packages are loaded and verified per kernel on
// the first CreateExecutor for it.
absl::StatusOr<std::unique_ptr<Device>> NewBackend(const Options& options);

}  // namespace NPUK_XRT_FLAVOR
}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_
