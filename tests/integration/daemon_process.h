// Starts the real npukd binary for integration tests, on a temporary unix
// socket (or a loopback port), and stops it. Never any non-loopback address.
#ifndef NPUK_TESTS_INTEGRATION_DAEMON_PROCESS_H_
#define NPUK_TESTS_INTEGRATION_DAEMON_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace npuk::testing {

class DaemonProcess {
 public:
  // Starts `npukd --listen=unix:<tmp>/npukd.sock <args>` and waits until
  // ServerLive answers (at most 30 s). Aborts the test on failure.
  // `credentials` is what the test's own channel uses (insecure when null),
  // e.g. TLS for a daemon started with --tls_cert.
  explicit DaemonProcess(
      std::vector<std::string> args,
      std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~DaemonProcess();  // SIGKILL if still running

  const std::string& target() const { return target_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub() const;
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }
  std::string log() const;

  // Sends `sig` and waits for the exit; returns the exit code (or 128+sig).
  int Stop(int sig, int timeout_s = 30);
  void Signal(int sig) const;

 private:
  pid_t pid_ = -1;
  std::string dir_;
  std::string target_;
  std::string log_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Path of the npukd binary (from the NPUKD_BINARY compile definition).
std::string NpukdBinary();

}  // namespace npuk::testing

#endif  // NPUK_TESTS_INTEGRATION_DAEMON_PROCESS_H_
