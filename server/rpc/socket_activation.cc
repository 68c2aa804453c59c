#include "server/rpc/socket_activation.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "fmt/format.h"

namespace npuk {

absl::StatusOr<std::optional<int>> TakeActivatedUnixSocket() {
  // unset_environment=1: the fds are ours alone, not our children's.
  const int n = sd_listen_fds(1);
  if (n < 0) {
    return absl::FailedPreconditionError(
        fmt::format("socket activation: cannot read LISTEN_FDS: {}; check the "
                    "environment systemd passed (npukd.socket)",
                    std::strerror(-n)));
  }
  if (n == 0) return std::nullopt;
  if (n > 1) {
    return absl::FailedPreconditionError(fmt::format(
        "socket activation: systemd passed {} sockets, npukd takes exactly "
        "one; keep a single ListenStream= in npukd.socket",
        n));
  }
  const int fd = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(fd, SOCK_STREAM, /*listening=*/1, nullptr, 0) <= 0) {
    return absl::FailedPreconditionError(
        "socket activation: the socket systemd passed is not a listening "
        "unix stream socket; npukd.socket must use ListenStream=/PATH (TCP "
        "is configured with --listen instead)");
  }
  return fd;
}

std::string UnixSocketPath(int fd) {
  sockaddr_un addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      addr.sun_family != AF_UNIX || len <= offsetof(sockaddr_un, sun_path)) {
    return "";
  }
  return std::string(
      addr.sun_path,
      strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
}

}  // namespace npuk
