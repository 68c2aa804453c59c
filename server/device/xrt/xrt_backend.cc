#include "server/device/xrt/xrt_backend.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "server/device/xrt/host_checks.h"
#include "server/device/xrt/xrt_device.h"

namespace npuk {

absl::StatusOr<std::unique_ptr<Device>> NewXrtDevice(
    const config::Config& config) {
  if (absl::Status s = xrt_backend::CheckHost({}); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("xrt: ", s.message()));
  }
  xrt_backend::Options options;
  options.backend_name = "xrt";
  options.target = "npu1_1col";
  if (!config.xrt().kernel_dir().empty()) {
    options.kernel_dir = config.xrt().kernel_dir();
  } else if (const char* env = std::getenv("NPUK_KERNEL_DIR"); env && *env) {
    options.kernel_dir = env;
  } else {
    options.kernel_dir = "/usr/lib/npukd/kernels";
  }
  options.device_index = config.xrt().device_index();
  if (config.xrt().run_timeout_ms() != 0) {
    options.run_timeout = absl::Milliseconds(config.xrt().run_timeout_ms());
  }
  options.use_runlist = config.xrt().use_runlist();
  return xrt_backend::NewBackend(options);
}

}  // namespace npuk
