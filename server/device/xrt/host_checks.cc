#include "server/device/xrt/host_checks.h"

#include <unistd.h>

#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

namespace npuk::xrt_backend {

absl::Status CheckHost(const HostEnvironment& env) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> nodes;
  for (const auto& entry : fs::directory_iterator(env.accel_dir, ec)) {
    if (entry.path().filename().string().rfind("accel", 0) == 0) {
      nodes.push_back(entry.path());
    }
  }
  if (nodes.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no NPU device node in ", env.accel_dir.string(),
        ": the amdxdna driver is not loaded. It needs Linux >= 6.10 with "
        "CONFIG_DRM_ACCEL (in-tree from 6.14) or xdna-driver's module; check "
        "`lsmod | grep amdxdna` and `dmesg | grep -i xdna`, or run with "
        "--backend=cpu / --backend=npu-sim"));
  }
  bool usable = false;
  for (const fs::path& node : nodes) {
    usable = usable || access(node.c_str(), R_OK | W_OK) == 0;
  }
  if (!usable) {
    return absl::FailedPreconditionError(absl::StrCat(
        "permission denied on ", nodes.front().string(),
        ": add this user to group `render` (systemd: "
        "SupplementaryGroups=render) or install the amdxdna udev rule "
        "(KERNEL==\"accel*\",DRIVERS==\"amdxdna\",MODE=\"0666\")"));
  }
  rlim_t memlock = 0;
  if (env.memlock) {
    memlock = *env.memlock;
  } else {
    rlimit lim{};
    if (getrlimit(RLIMIT_MEMLOCK, &lim) != 0) {
      return absl::InternalError("getrlimit(RLIMIT_MEMLOCK) failed");
    }
    memlock = lim.rlim_cur;
  }
  if (memlock != RLIM_INFINITY && memlock < kMinMemlockBytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "RLIMIT_MEMLOCK is ", memlock / 1024,
        " KiB; the NPU driver locks its buffers and a 64 MiB heap. Set "
        "LimitMEMLOCK=infinity in the systemd unit, or `* soft memlock "
        "unlimited` and `* hard memlock unlimited` in "
        "/etc/security/limits.d/99-amdxdna.conf and log in again"));
  }
  return absl::OkStatus();
}

}  // namespace npuk::xrt_backend
