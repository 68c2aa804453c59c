// The daemon's own listening sockets and the acceptor that hands their
// connections to gRPC.
//
// gRPC 1.51's listener (src/core/lib/iomgr/tcp_server_posix.cc) retires a
// listening port for good after one accept4 error other than EAGAIN or
// ECONNABORTED: after a single EMFILE ("Failed accept4: Too many open
// files") it never accepts again while the process lives on. So npukd owns
// every insecure listening socket (unix and TCP) itself: ConnectionAcceptor
// accept()s on them and gives each connection to the running server with
// grpc::AddInsecureChannelFromFd (which applies the server's channel args,
// e.g. the message size limits). On EMFILE/ENFILE it
//   - releases its spare fd (the reserve), accepts a waiting connection
//     and closes it at once, so that the client learns immediately instead
//     of waiting in the backlog, then re-takes the reserve (for each waiting
//     client, each backoff tick, while fds stay exhausted);
//   - enters the "cannot accept" state (AcceptorOptions::on_state(false)):
//     the daemon turns health NOT_SERVING;
//   - backs off (initial_backoff doubling to max_backoff) and probes, each
//     tick, whether an fd can be had again; the first success leaves the
//     state (on_state(true)). Recovery therefore follows fds coming back by
//     at most max_backoff plus one poll.
// TLS listeners use the same acceptor: gRPC 1.51 cannot take a secure
// connection from an fd (grpc_server_add_channel_from_fd refuses anything
// but insecure credentials), so their connections go to a TlsRelay
// (tls_relay.h), a ConnectionSink that relays the bytes to a gRPC TLS
// listener on a private unix socket. gRPC's own accept4 on that socket must
// never fail: the acceptor's fd allocations go through the relay's FdBudget.
//
// Usage (daemon):
//   NPUK_ASSIGN_OR_RETURN(InstanceLock lock, InstanceLock::Acquire(path));
//   NPUK_ASSIGN_OR_RETURN(int fd, ListenUnix(path, 0660, gid));  // or
//   NPUK_ASSIGN_OR_RETURN(TcpListener tcp, ListenTcp("127.0.0.1:0"));
//   server = builder.BuildAndStart();   // no AddListeningPort for these
//   ConnectionAcceptor acceptor({fd}, {.on_state = ...});
//   acceptor.Start(server.get());   // or Start(&tls_relay) for TLS
//   ... on drain: acceptor.Stop() first, then server->Shutdown().
#ifndef NPUK_SERVER_RPC_LISTENER_H_
#define NPUK_SERVER_RPC_LISTENER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class Server;
}

namespace npuk {

// An exclusive flock(2) on `path` (created 0600 if missing), held until
// destruction: a second daemon for the same socket fails at once with
// ALREADY_EXISTS naming the holder's pid, instead of both running with one
// of them unreachable. The lock is released by the kernel when the process
// dies, so a stale lock file never blocks a restart.
class InstanceLock {
 public:
  static absl::StatusOr<InstanceLock> Acquire(const std::string& path);
  InstanceLock() = default;
  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&& other) noexcept;
  ~InstanceLock();

  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The lock file for a listen address: "<socket>.lock" for unix:PATH; for
// HOST:PORT, npukd-tcp-<host>-<port>.lock in `runtime_dir` (port 0 gets no
// lock: every such daemon has its own port).
std::string LockPathFor(const std::string& listen,
                        const std::string& runtime_dir);

// A listening unix stream socket bound at `path` (which must not exist; the
// caller removes a stale one). The socket is created under umask 0177, so
// it is never more open than 0600, then chmod()ed to `mode` and, when
// `gid` >= 0, chown()ed to that group before listen(): no client can
// connect while its permissions are wider than asked.
absl::StatusOr<int> ListenUnix(const std::string& path, uint32_t mode,
                               gid_t gid);

// Listening TCP sockets for "HOST:PORT" ("[::]:8001", "0.0.0.0:8001",
// "localhost:0", ...): one per address the host resolves to, all on the same
// port (the kernel's choice when 0 was asked).
struct TcpListener {
  std::vector<int> fds;
  int port = 0;
};
absl::StatusOr<TcpListener> ListenTcp(const std::string& host_port);

// Orders the fd allocations of npukd's own threads (the acceptor, the TLS
// relay) with an accept4 that gRPC still has to make on the relay's
// internal listener. gRPC retires that listener after one EMFILE, and no
// syscall reserves an fd for another thread's accept4: the relay closes its
// spare fds just before it connects, and until it has seen gRPC accept
// ("owed"), nothing of ours may open an fd, since it could take exactly the
// ones gRPC needs. Probing (opening fds to see whether there are enough) is an
// allocation too, so it also runs inside Run.
class FdBudget {
 public:
  // Runs `allocate` once gRPC is owed no accept, waiting at most `wait`;
  // false (and not run) when it still is. `allocate` returns true when it
  // left gRPC an accept to make (the relay's connect): then it is owed
  // until Paid().
  bool Run(absl::Duration wait, absl::FunctionRef<bool()> allocate);
  // gRPC was seen to accept (or the connection is gone).
  void Paid();
  bool owed() const;

 private:
  mutable absl::Mutex mu_;
  bool owed_ ABSL_GUARDED_BY(mu_) = false;
};

// Where the acceptor's connections go. Thread safety: Take and HasHeadroom
// are called from the acceptor thread.
class ConnectionSink {
 public:
  virtual ~ConnectionSink() = default;
  // Takes `fd`, a connected socket, also on failure (it is then closed).
  // RESOURCE_EXHAUSTED: there are not the fds to serve it; the acceptor
  // counts it shed and enters the "cannot accept" state, as for its own
  // EMFILE.
  virtual absl::Status Take(int fd) = 0;
  // Whether Take would find the fds it needs: part of the acceptor's
  // recovery probe.
  virtual bool HasHeadroom() { return true; }
  // Non-null when the acceptor must allocate fds through it.
  virtual FdBudget* budget() { return nullptr; }
};

struct AcceptorOptions {
  // Called from the acceptor thread when it enters (false, with the error)
  // or leaves (true, "") the "cannot accept" state. Never called with a
  // lock of the acceptor held.
  std::function<void(bool accepting, const std::string& error)> on_state;
  absl::Duration initial_backoff = absl::Milliseconds(5);
  absl::Duration max_backoff = absl::Milliseconds(100);
  // Log name, e.g. "unix:/run/npukd/npukd.sock".
  std::string name;
};

// Thread safety: Start and Stop may be called from any thread, once each;
// the accessors from any thread at any time.
class ConnectionAcceptor {
 public:
  // Takes ownership of the listening fds (closed by Stop or the destructor).
  explicit ConnectionAcceptor(std::vector<int> listen_fds,
                              AcceptorOptions options = {});
  explicit ConnectionAcceptor(int listen_fd)
      : ConnectionAcceptor(std::vector<int>{listen_fd}) {}
  ~ConnectionAcceptor();  // Stop()s.
  ConnectionAcceptor(const ConnectionAcceptor&) = delete;
  ConnectionAcceptor& operator=(const ConnectionAcceptor&) = delete;

  // Starts accepting; connections go to `server` (insecure), which must be
  // started and outlive Stop(). INTERNAL if the wake-up pipe or the fd
  // reserve cannot be made.
  absl::Status Start(grpc::Server* server);
  // Same, connections go to `sink`, which must outlive Stop().
  absl::Status Start(ConnectionSink* sink);
  // Stops accepting and joins the thread; pending connections in the
  // backlog are refused when the sockets close. Connections already handed
  // over stay with the server. Idempotent.
  void Stop();

  // Connections handed to the server so far.
  uint64_t accepted() const;
  // Connections accepted and closed at once because fds ran out.
  uint64_t shed() const;
  // False while in the "cannot accept" state.
  bool accepting() const;

 private:
  enum class Accept { kAccepted, kEmpty, kExhausted, kBusy, kOther };
  void Loop();
  // One accept4 on `fd`; a connection goes to sink_. Sets *error on
  // kExhausted.
  Accept AcceptOne(int fd, std::string* error);
  // Runs `allocate` through the sink's FdBudget when it has one; false
  // when the budget stayed owed.
  bool Allocate(absl::FunctionRef<void()> allocate);
  // Whether an fd (and the sink's headroom) can be had again.
  bool Probe();
  // While `fd` has connections waiting (at most 64) and the reserve is
  // held: closes the reserve, accepts one, closes it, re-takes the reserve.
  void Shed(int fd);
  void SetAccepting(bool accepting, const std::string& error);

  std::vector<int> listen_fds_;
  const AcceptorOptions options_;
  std::unique_ptr<ConnectionSink> own_sink_;  // Start(grpc::Server*)
  ConnectionSink* sink_ = nullptr;
  int wake_[2] = {-1, -1};
  int reserve_ = -1;  // the spare fd released on EMFILE/ENFILE
  std::thread thread_;
  mutable absl::Mutex mu_;
  uint64_t accepted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t shed_ ABSL_GUARDED_BY(mu_) = 0;
  bool accepting_ ABSL_GUARDED_BY(mu_) = true;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (the systemd default
// soft limit of 1024 is far below what a server needs); returns the new
// soft limit.
uint64_t RaiseFdLimit();

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_LISTENER_H_
