#include "server/device/factory.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/device/cpu/cpu_device.h"
#include "server/device/npu_sim/npu_sim_device.h"
#ifdef NPUK_HAVE_XRT
#include "server/device/xrt/xrt_backend.h"
#endif

namespace npuk {

std::vector<std::string> AvailableBackends() {
  std::vector<std::string> names = {"cpu", "npu-sim"};
#ifdef NPUK_HAVE_XRT
  names.push_back("xrt");
#endif
  return names;
}

absl::StatusOr<std::unique_ptr<Device>> CreateDevice(
    const config::Config& config) {
  const std::string& name = config.backend();
  if (name == "cpu") {
    int threads = static_cast<int>(config.cpu_threads());
    if (threads <= 0) {
      threads = static_cast<int>(std::thread::hardware_concurrency());
    }
    return NewCpuDevice(threads > 0 ? threads : 1);
  }
  if (name == "npu-sim") return NewNpuSimDevice(config);
#ifdef NPUK_HAVE_XRT
  if (name == "xrt") return NewXrtDevice(config);
#else
  if (name == "xrt") {
    return absl::FailedPreconditionError(
        "this npukd was built without the xrt backend (no XRT >= 2.17 was "
        "found at build time); install XRT 2.17+ with the amdxdna plugin and "
        "rebuild, or use --backend=npu-sim to exercise the NPU path without "
        "hardware");
  }
#endif
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown backend \"", name,
      "\"; this build offers: ", absl::StrJoin(AvailableBackends(), ", ")));
}

}  // namespace npuk
