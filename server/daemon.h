// The assembled daemon: device, per-model batchers, the gRPC server with its
// services, metrics. main.cc owns process concerns (flags, signals).
#ifndef NPUK_SERVER_DAEMON_H_
#define NPUK_SERVER_DAEMON_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config.pb.h"

namespace npuk {

class Daemon {
 public:
  // Builds everything from a finalized config and starts listening.
  // Errors say what failed to start and what to do.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(
      const config::Config& config);
  virtual ~Daemon() = default;

  // The address clients use ("unix:/run/npukd/npukd.sock", "127.0.0.1:8001"
  // with the bound port when 0 was asked).
  virtual std::string address() const = 0;

  // Stops accepting (new calls get UNAVAILABLE), answers everything
  // accepted, then stops the server. Returns false when the drain did not
  // finish within `timeout`.
  virtual bool Drain(absl::Duration timeout) = 0;

  // Drill: turns configured fault injection off (false) or back on (true).
  virtual void SetFaultsEnabled(bool enabled) = 0;
};

}  // namespace npuk

#endif  // NPUK_SERVER_DAEMON_H_
