// The daemon's configuration: a text-format npuk.config.Config, with
// command-line flags applied on top and defaults filled in.
#ifndef NPUK_SERVER_CONFIG_H_
#define NPUK_SERVER_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "config.pb.h"

namespace npuk {

// Parses a text-format Config file; errors carry the file, line and column.
absl::StatusOr<config::Config> LoadConfigFile(const std::string& path);

// Fills unset fields with their documented defaults (proto/config.proto) and
// rejects impossible values, naming the field and the allowed range.
absl::Status FinalizeConfig(config::Config& config);

// The daemon's default unix socket: $NPUK_SOCKET, else
// $RUNTIME_DIRECTORY/npukd.sock (systemd), else $XDG_RUNTIME_DIR/npukd.sock,
// else /run/npukd/npukd.sock for root, else /tmp/npukd-<uid>.sock.
std::string DefaultSocketPath();

// Settings of one model after FinalizeConfig; nullptr if disabled/unknown.
const config::ModelSettings* FindModelSettings(const config::Config& config,
                                               std::string_view name);

}  // namespace npuk

#endif  // NPUK_SERVER_CONFIG_H_
