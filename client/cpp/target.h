// Where the daemon listens, as clients see it. Mirrors npukd's own lookup so
// that a client started with no --target finds a daemon started with no
// --listen.
#ifndef NPUK_CLIENT_CPP_TARGET_H_
#define NPUK_CLIENT_CPP_TARGET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace npuk {

// The daemon's default unix socket: $NPUK_SOCKET, else
// $RUNTIME_DIRECTORY/npukd.sock (systemd), else $XDG_RUNTIME_DIR/npukd.sock,
// else /run/npukd/npukd.sock for root, else /tmp/npukd-<uid>.sock.
std::string DefaultSocketPath();

// The target a client uses when none is given: $NPUK_TARGET, else
// "unix:" + DefaultSocketPath(), except that a user whose own socket does not
// exist reaches the system daemon at /run/npukd/npukd.sock when that exists.
std::string DefaultTarget();

// Turns "unix:PATH" or "HOST:PORT" (an empty string means DefaultTarget())
// into a gRPC channel target. INVALID_ARGUMENT names the accepted forms.
absl::StatusOr<std::string> ResolveTarget(absl::string_view target);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_TARGET_H_
