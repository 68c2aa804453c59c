// The XRT backend, written against the real XRT >= 2.17 API
// (reference/xrt.md) and compiled twice: against real XRT (npuk_device_xrt)
// and against npu-sim's stand-in headers (npuk_device_npu_sim). Each build
// defines NPUK_XRT_FLAVOR privately so both can link into one binary, and
// NPUK_XRT_NPUSIM (1 for npu-sim, 0 for real XRT): only the npu-sim build
// has the test-only calling mistakes (xrt_misuse.h), so the real build has
// no code path that calls XRT wrongly. Include only from the backend's own
// sources; the daemon uses xrt_backend.h / npu_sim_device.h.
#ifndef NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_
#define NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/device/device.h"
#include "server/device/xrt/xrt_options.h"

#ifndef NPUK_XRT_FLAVOR
#error "NPUK_XRT_FLAVOR must name the XRT build (real or npusim)"
#endif
#ifndef NPUK_XRT_NPUSIM
#error "NPUK_XRT_NPUSIM must be 1 (npu-sim build) or 0 (real XRT)"
#endif

#if NPUK_XRT_NPUSIM
#include "server/device/xrt/xrt_misuse.h"
#include "xrt/xrt_device.h"
#endif

namespace npuk::xrt_backend {
inline namespace NPUK_XRT_FLAVOR {

#if NPUK_XRT_NPUSIM
// The backend on `device`, which the caller opened: npu-sim gives every
// xrt::device its own simulated NPU, which the caller configures and
// inspects. `misuse` is Misuse::kNone except in tests. Kernel packages are
// loaded and verified per kernel on the first CreateExecutor for it.
std::unique_ptr<Device> NewBackend(const Options& options, xrt::device device,
                                   Misuse misuse);
#else
// Opens xrt::device(options.device_index). Kernel packages are loaded and
// verified per kernel on the first CreateExecutor for it.
absl::StatusOr<std::unique_ptr<Device> > NewBackend(const Options& options);
#endif

}  // namespace NPUK_XRT_FLAVOR
}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_XRT_DEVICE_H_
