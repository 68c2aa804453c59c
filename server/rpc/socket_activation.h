// Socket activation (npukd.socket): systemd creates /run/npukd/npukd.sock and
// hands it over as fd 3 (sd_listen_fds). gRPC 1.51 cannot adopt a listening
// fd, so an acceptor thread accept()s on it and gives every connection to
// the running server with grpc::AddInsecureChannelFromFd. Unix sockets only;
// TCP/TLS listeners are configured on the ServerBuilder as usual.
//
// Usage (daemon):
//   NPUK_ASSIGN_OR_RETURN(std::optional<int> fd, TakeActivatedUnixSocket());
//   if (fd) { build the server WITHOUT AddListeningPort for the unix path;
//             server = builder.BuildAndStart();
//             acceptor = std::make_unique<ActivatedSocketAcceptor>(*fd);
//             acceptor->Start(server.get()); }
//   ... on drain: acceptor->Stop() (no new connections), then drain the
//   server; destroy the acceptor before the server.
#ifndef NPUK_SERVER_RPC_SOCKET_ACTIVATION_H_
#define NPUK_SERVER_RPC_SOCKET_ACTIVATION_H_

#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class Server;
}

namespace npuk {

// The listening unix stream socket systemd passed, or nullopt when the
// process was not socket-activated (LISTEN_FDS unset or for another pid).
// Unsets LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES so children do not inherit
// them. FAILED_PRECONDITION, with what to fix in the .socket unit, when
// systemd passed several fds or one that is not a listening AF_UNIX
// SOCK_STREAM socket.
absl::StatusOr<std::optional<int>> TakeActivatedUnixSocket();

// The path a unix listening socket is bound to ("" when unnamed).
std::string UnixSocketPath(int fd);

// Thread safety: Start and Stop may be called from any thread, once each.
class ActivatedSocketAcceptor {
 public:
  // Takes ownership of `listen_fd` (closed by Stop or the destructor).
  explicit ActivatedSocketAcceptor(int listen_fd);
  ~ActivatedSocketAcceptor();  // Stop()s.
  ActivatedSocketAcceptor(const ActivatedSocketAcceptor&) = delete;
  ActivatedSocketAcceptor& operator=(const ActivatedSocketAcceptor&) = delete;

  // Starts accepting; connections go to `server`, which must be started and
  // outlive Stop(). INTERNAL if the wake-up pipe cannot be made.
  absl::Status Start(grpc::Server* server);
  // Stops accepting and joins the thread. Connections already handed over
  // stay with the server. Idempotent.
  void Stop();

  // Connections handed to the server so far.
  uint64_t accepted() const;

 private:
  void Loop(grpc::Server* server);

  int listen_fd_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
  mutable absl::Mutex mu_;
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_SOCKET_ACTIVATION_H_
