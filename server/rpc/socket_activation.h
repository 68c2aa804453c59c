// Socket activation (npukd.socket): systemd creates /run/npukd/npukd.sock and
// hands it over as fd 3 (sd_listen_fds). gRPC 1.51 cannot adopt a listening
// fd, so the daemon's ConnectionAcceptor (listener.h) accept()s on it and
// gives every connection to the running server with
// grpc::AddInsecureChannelFromFd (with TLS configured: to the TlsRelay,
// tls_relay.h), as it does for the sockets it opens itself. Unix sockets
// only.
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

#include "absl/status/statusor.h"
#include "server/rpc/listener.h"

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

// Accepts on the inherited socket like on the daemon's own ones
// (listener.h: fd reserve, backoff, the "cannot accept" state).
using ActivatedSocketAcceptor = ConnectionAcceptor;

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_SOCKET_ACTIVATION_H_
