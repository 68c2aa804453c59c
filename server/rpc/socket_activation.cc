#include "server/rpc/socket_activation.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "fmt/format.h"
#include "grpcpp/server.h"
#include "grpcpp/server_posix.h"
#include "spdlog/spdlog.h"

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

ActivatedSocketAcceptor::ActivatedSocketAcceptor(int listen_fd)
    : listen_fd_(listen_fd) {}

ActivatedSocketAcceptor::~ActivatedSocketAcceptor() {
  Stop();
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

absl::Status ActivatedSocketAcceptor::Start(grpc::Server* server) {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(fmt::format(
        "socket activation: pipe2 failed: {}", std::strerror(errno)));
  }
  // The inherited socket may be blocking; accept must never stall Stop().
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  fcntl(listen_fd_, F_SETFD, FD_CLOEXEC);
  spdlog::info("socket activation: accepting on {} (fd {})",
               UnixSocketPath(listen_fd_), listen_fd_);
  thread_ = std::thread([this, server] { Loop(server); });
  return absl::OkStatus();
}

void ActivatedSocketAcceptor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (wake_[1] >= 0) {
    const char byte = 1;
    // A full pipe already wakes the loop, so the result does not matter.
    [[maybe_unused]] ssize_t w = write(wake_[1], &byte, 1);
  }
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

uint64_t ActivatedSocketAcceptor::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

void ActivatedSocketAcceptor::Loop(grpc::Server* server) {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("socket activation: poll failed: {}; no longer accepting",
                    std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    const int conn =
        accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
          errno == ECONNABORTED) {
        continue;
      }
      // EMFILE/ENFILE/ENOBUFS: back off instead of spinning; the client
      // stays in the backlog.
      spdlog::error("socket activation: accept failed: {}; retrying",
                    std::strerror(errno));
      poll(&fds[1], 1, 100);
      continue;
    }
    // The server owns the fd from here, and closes it with the channel.
    grpc::AddInsecureChannelFromFd(server, conn);
    absl::MutexLock lock(&mu_);
    ++accepted_;
  }
}

}  // namespace npuk
