// Start-up checks of the machine for the xrt backend, run before XRT is
// touched so that the common set-up mistakes get a message that says what
// to do instead of an ioctl errno (reference/xrt.md §4).
#ifndef NPUK_SERVER_DEVICE_XRT_HOST_CHECKS_H_
#define NPUK_SERVER_DEVICE_XRT_HOST_CHECKS_H_

#include <sys/resource.h>

#include <filesystem>
#include <optional>

#include "absl/status/status.h"

namespace npuk::xrt_backend {

// The amdxdna shim maps BOs locked and allocates a 64 MiB device heap.
inline constexpr rlim_t kMinMemlockBytes = rlim_t{64} << 20;

struct HostEnvironment {
  std::filesystem::path accel_dir = "/dev/accel";
  // RLIMIT_MEMLOCK soft limit; nullopt reads the process's own.
  std::optional<rlim_t> memlock;
};

// OK when an accel node exists and is readable and writable, and
// RLIMIT_MEMLOCK is at least kMinMemlockBytes (or unlimited).
// FAILED_PRECONDITION otherwise, naming the fix.
absl::Status CheckHost(const HostEnvironment& env);

}  // namespace npuk::xrt_backend

#endif  // NPUK_SERVER_DEVICE_XRT_HOST_CHECKS_H_
