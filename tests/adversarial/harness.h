// Shared by the adversarial suite (tests/adversarial/*_test.cc): figures of
// a running npukd read from /proc (resident memory, open fds, threads) and a
// before/after report per attack, printed to the test's output so that CI
// logs show what each attack cost the daemon. The daemon itself is started
// with tests/integration/daemon_process.h; requests come from
// tests/reliability/requests.h.
//
// Usage:
//   DaemonProcess d({"--backend=cpu"});
//   AttackFigures fig(d.pid(), "2000 abandoned streams");
//   ... attack ...
//   fig.Report();   // prints "[attack] ... RSS 26.1 -> 27.0 MB ..." and
//                   // returns the figures after the attack
//   EXPECT_LT(fig.after().rss_kb, 256 * 1024);
#ifndef NPUK_TESTS_ADVERSARIAL_HARNESS_H_
#define NPUK_TESTS_ADVERSARIAL_HARNESS_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"

namespace npuk::testing {

// One reading of /proc/<pid>/status and /proc/<pid>/fd; -1 where unreadable
// (e.g. the process has exited).
struct ProcFigures {
  long rss_kb = -1;       // VmRSS
  long peak_rss_kb = -1;  // VmHWM: the high-water mark since start
  long fds = -1;          // entries of /proc/<pid>/fd
  long threads = -1;      // Threads
};
ProcFigures ReadProcFigures(pid_t pid);
// "RSS 26.1 MB (peak 40.2 MB), 31 fds, 12 threads"
std::string FormatFigures(const ProcFigures& f);

// Records the figures at construction; Report() reads them again and prints
// one line, "[attack] <name>: before <...>; after <...>", to stdout.
class AttackFigures {
 public:
  AttackFigures(pid_t pid, std::string name);
  // Reads and prints the figures after the attack; callable several times
  // (e.g. "during" and "after"), each call prints one line with `stage`.
  const ProcFigures& Report(const std::string& stage = "after");
  const ProcFigures& before() const { return before_; }
  const ProcFigures& after() const { return after_; }

 private:
  pid_t pid_;
  std::string name_;
  ProcFigures before_;
  ProcFigures after_;
};

// Polls `condition` every `poll` until it holds or `timeout` passes; returns
// how long it took, or -1 ms when it never held.
std::chrono::milliseconds WaitUntil(
    const std::function<bool()>& condition, std::chrono::milliseconds timeout,
    std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// A fresh insecure channel to `target` (its own connection, not shared with
// other channels; short reconnect backoff), so that a probe never rides on a
// connection an attack opened or broke.
// `credentials`: insecure when null.
std::shared_ptr<grpc::Channel> FreshChannel(
    const std::string& target,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

// A throwaway CA, a server certificate for 127.0.0.1 and localhost and a
// client certificate, both from that CA, made in a fresh TempDir() by the
// openssl CLI (scripts/install-deps.sh installs it).
class TestCertificates {
 public:
  TestCertificates();
  bool ok() const { return ok_; }
  // server.pem, server.key, ca.pem, client.pem, client.key, openssl.log
  std::string path(const std::string& name) const;
  // npukd's flags for mutual TLS with these.
  std::vector<std::string> MutualTlsFlags() const;
  // What a client with the client certificate uses.
  std::shared_ptr<grpc::ChannelCredentials> ClientCredentials() const;

 private:
  std::string dir_;
  bool ok_ = false;
};

// npukd started directly (not through DaemonProcess, which insists on a
// daemon that comes up): for tests of start-up failures and of several
// daemons at once. stdout and stderr go to `log_path`; `umask_value` is the
// child's umask. Returns the pid.
pid_t SpawnNpukd(const std::vector<std::string>& args,
                 const std::string& log_path, mode_t umask_value = 022);
// Waits for `pid` to exit: its exit code, 128 + signal, or -1 on timeout
// (the process is then killed).
int WaitExit(pid_t pid, std::chrono::milliseconds timeout);
// The whole text of a file ("" when missing).
std::string ReadText(const std::string& path);

// Runs npukd with `args` to completion (at most `timeout`): its exit code
// and everything it printed.
struct NpukdRun {
  int exit_code = -1;
  std::string output;
};
NpukdRun RunNpukd(
    const std::vector<std::string>& args,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));

// A fresh temporary directory under /tmp (short: unix socket paths are
// limited to 107 bytes).
std::string TempDir();

}  // namespace npuk::testing

#endif  // NPUK_TESTS_ADVERSARIAL_HARNESS_H_
