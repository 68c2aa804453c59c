#include "server/rpc/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "fmt/format.h"
#include "grpcpp/server.h"
#include "grpcpp/server_posix.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

constexpr int kBacklog = 1024;

std::string Errno() { return std::strerror(errno); }

bool FdExhausted(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int OpenReserve() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

// Splits "host:port" / "[v6]:port"; false when malformed.
bool SplitHostPort(const std::string& s, std::string* host, std::string* port) {
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *host = s.substr(0, colon);
  *port = s.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !port->empty();
}

}  // namespace

// ---- InstanceLock ----

absl::StatusOr<InstanceLock> InstanceLock::Acquire(const std::string& path) {
  InstanceLock lock;
  lock.path_ = path;
  lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock.fd_ < 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot open the instance lock ", path, ": ", Errno(),
        "; the directory of the socket must be writable by npukd"));
  }
  if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    // The holder writes its pid right after locking: give it a moment.
    for (int i = 0; i < 10 && ::pread(lock.fd_, pid, sizeof(pid) - 1, 0) <= 0;
         ++i) {
      ::usleep(5000);
    }
    std::string holder(pid);
    holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
    if (err == EWOULDBLOCK) {
      return absl::AlreadyExistsError(absl::StrCat(
          "another npukd",
          holder.empty() ? "" : absl::StrCat(" (pid ", holder, ")"), " holds ",
          path,
          " and serves this address; stop it (systemctl stop npukd) or "
          "choose another --listen address"));
    }
    return absl::PermissionDeniedError(
        absl::StrCat("cannot lock ", path, ": ", std::strerror(err)));
  }
  // The holder's pid, for the error a second daemon prints.
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(lock.fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t n =
        ::pwrite(lock.fd_, pid.data(), pid.size(), 0);
  }
  return lock;
}

InstanceLock::InstanceLock(InstanceLock&& other) noexcept
    : fd_(other.fd_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

InstanceLock& InstanceLock::operator=(InstanceLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

InstanceLock::~InstanceLock() {
  // The file stays: unlinking it would let a third daemon lock a new inode
  // while a second one still waits on the old.
  if (fd_ >= 0) ::close(fd_);
}

std::string LockPathFor(const std::string& listen,
                        const std::string& runtime_dir) {
  if (listen.rfind("unix:", 0) == 0)
    return absl::StrCat(listen.substr(5), ".lock");
  std::string host;
  std::string port;
  if (!SplitHostPort(listen, &host, &port) || port == "0") return "";
  const std::string name = absl::StrReplaceAll(host, {{"/", "_"}, {":", "_"}});
  return absl::StrCat(runtime_dir, "/npukd-tcp-", name, "-", port, ".lock");
}

// ---- listening sockets ----

absl::StatusOr<int> ListenUnix(const std::string& path, uint32_t mode,
                               gid_t gid) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unix socket path ", path, " is longer than ",
        sizeof(addr.sun_path) - 1, " bytes; choose a shorter one"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd =
      ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot create a unix socket: ", Errno()));
  }
  // bind() creates the inode with 0777 & ~umask: never wider than 0600.
  const mode_t old = ::umask(0177);
  const int bound =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old);
  if (bound != 0) {
    ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", path, ": ", std::strerror(bind_errno),
                     "; pass --listen=unix:PATH in a writable directory"));
  }
  auto fail = [&](const std::string& what) -> absl::Status {
    const std::string error = Errno();
    ::close(fd);
    ::unlink(path.c_str());
    return absl::PermissionDeniedError(absl::StrCat(what, ": ", error));
  };
  if (gid != static_cast<gid_t>(-1) &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return fail(absl::StrCat("cannot give ", path, " to group ", gid));
  }
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
    return fail(absl::StrCat("cannot chmod ", path));
  }
  if (::listen(fd, kBacklog) != 0)
    return fail(absl::StrCat("cannot listen on ", path));
  return fd;
}

absl::StatusOr<TcpListener> ListenTcp(const std::string& host_port) {
  std::string host;
  std::string port;
  int port_number = -1;
  if (!SplitHostPort(host_port, &host, &port) ||
      !absl::SimpleAtoi(port, &port_number) || port_number < 0 ||
      port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", host_port.substr(0, 256),
        ": expected HOST:PORT with PORT 0 to 65535 (e.g. 127.0.0.1:8001) or "
        "unix:/abs/path"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc =
      ::getaddrinfo(host.empty() || host == "*" ? nullptr : host.c_str(),
                    port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", host_port.substr(0, 256), ": cannot resolve '",
        host.substr(0, 256), "': ", ::gai_strerror(rc)));
  }
  TcpListener out;
  out.port = port_number;
  std::string last_error;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                 a->ai_protocol);
    if (fd < 0) {
      last_error = Errno();
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_storage addr{};
    std::memcpy(&addr, a->ai_addr, a->ai_addrlen);
    if (a->ai_family == AF_INET6) {
      // "[::]" also takes IPv4, as gRPC's own listener does.
      const int zero = 0;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
      reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port =
          htons(static_cast<uint16_t>(out.port));
    } else if (a->ai_family == AF_INET) {
      reinterpret_cast<sockaddr_in*>(&addr)->sin_port =
          htons(static_cast<uint16_t>(out.port));
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), a->ai_addrlen) != 0 ||
        ::listen(fd, kBacklog) != 0) {
      last_error = Errno();
      ::close(fd);
      // The dual-stack "::" socket already covers 0.0.0.0.
      if (errno == EADDRINUSE && !out.fds.empty()) continue;
      continue;
    }
    if (out.port == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof(bound);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      out.port = ntohs(bound.ss_family == AF_INET6
                           ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
    out.fds.push_back(fd);
  }
  ::freeaddrinfo(found);
  if (out.fds.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", host_port.substr(0, 256), ": ", last_error,
        "; check that the address is free and that you may bind it"));
  }
  return out;
}

uint64_t RaiseFdLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

// ---- FdBudget ----

bool FdBudget::Run(absl::Duration wait, absl::FunctionRef<bool()> allocate) {
  absl::MutexLock lock(&mu_);
  const auto not_owed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !owed_;
  };
  if (owed_ && !mu_.AwaitWithTimeout(absl::Condition(&not_owed), wait)) {
    return false;
  }
  if (allocate()) owed_ = true;
  return true;
}

void FdBudget::Paid() {
  absl::MutexLock lock(&mu_);
  owed_ = false;
}

bool FdBudget::owed() const {
  absl::MutexLock lock(&mu_);
  return owed_;
}

// ---- ConnectionAcceptor ----

namespace {

// Start(grpc::Server*): each connection becomes an insecure channel of the
// server, which owns the fd from then on and closes it with the channel.
class InsecureServerSink final : public ConnectionSink {
 public:
  explicit InsecureServerSink(grpc::Server* server) : server_(server) {}
  absl::Status Take(int fd) override {
    grpc::AddInsecureChannelFromFd(server_, fd);
    return absl::OkStatus();
  }

 private:
  grpc::Server* server_;
};

// How long the acceptor waits for gRPC's owed accept before it polls again.
constexpr absl::Duration kBudgetWait = absl::Milliseconds(10);

}  // namespace

ConnectionAcceptor::ConnectionAcceptor(std::vector<int> listen_fds,
                                       AcceptorOptions options)
    : listen_fds_(std::move(listen_fds)), options_(std::move(options)) {}

ConnectionAcceptor::~ConnectionAcceptor() {
  Stop();
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
  if (reserve_ >= 0) ::close(reserve_);
}

absl::Status ConnectionAcceptor::Start(grpc::Server* server) {
  own_sink_ = std::make_unique<InsecureServerSink>(server);
  return Start(own_sink_.get());
}

absl::Status ConnectionAcceptor::Start(ConnectionSink* sink) {
  sink_ = sink;
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(
        absl::StrCat("listener: pipe2 failed: ", Errno()));
  }
  reserve_ = OpenReserve();
  if (reserve_ < 0) {
    return absl::InternalError(absl::StrCat(
        "listener: cannot open /dev/null for the fd reserve: ", Errno()));
  }
  for (int fd : listen_fds_) {
    // An inherited socket may be blocking; accept must never stall Stop().
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  spdlog::info("listener: accepting on {} ({} socket{})", options_.name,
               listen_fds_.size(), listen_fds_.size() == 1 ? "" : "s");
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void ConnectionAcceptor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (wake_[1] >= 0) {
    const char byte = 1;
    // A full pipe already wakes the loop, so the result does not matter.
    [[maybe_unused]] ssize_t w = ::write(wake_[1], &byte, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int& fd : listen_fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

uint64_t ConnectionAcceptor::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

uint64_t ConnectionAcceptor::shed() const {
  absl::MutexLock lock(&mu_);
  return shed_;
}

bool ConnectionAcceptor::accepting() const {
  absl::MutexLock lock(&mu_);
  return accepting_;
}

void ConnectionAcceptor::SetAccepting(bool accepting,
                                      const std::string& error) {
  {
    absl::MutexLock lock(&mu_);
    if (accepting_ == accepting) return;
    accepting_ = accepting;
  }
  if (accepting) {
    spdlog::warn("listener: {} accepts connections again", options_.name);
  } else {
    spdlog::error(
        "listener: {} cannot accept connections: {}; health is NOT_SERVING "
        "until file descriptors are free again (raise LimitNOFILE= or find "
        "what holds them: ls /proc/{}/fd)",
        options_.name, error, ::getpid());
  }
  if (options_.on_state) options_.on_state(accepting, error);
}

bool ConnectionAcceptor::Allocate(absl::FunctionRef<void()> allocate) {
  FdBudget* budget = sink_->budget();
  if (budget == nullptr) {
    allocate();
    return true;
  }
  return budget->Run(kBudgetWait, [&] {
    allocate();
    return false;
  });
}

bool ConnectionAcceptor::Probe() {
  bool ok = false;
  if (!Allocate([&] {
        if (reserve_ < 0) reserve_ = OpenReserve();
        const int probe = OpenReserve();
        if (probe >= 0) ::close(probe);
        ok = probe >= 0;
      })) {
    return false;
  }
  return ok && sink_->HasHeadroom();
}

ConnectionAcceptor::Accept ConnectionAcceptor::AcceptOne(int fd,
                                                         std::string* error) {
  int conn = -1;
  int err = 0;
  if (!Allocate([&] {
        conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        err = errno;
      })) {
    return Accept::kBusy;
  }
  if (conn < 0) {
    if (FdExhausted(err)) {
      *error = fmt::format("accept4: {}", std::strerror(err));
      return Accept::kExhausted;
    }
    // EAGAIN: the backlog is empty. ECONNABORTED, EINTR, EPROTO...: that
    // one connection is gone, the socket is fine.
    return err == EAGAIN || err == EWOULDBLOCK ? Accept::kEmpty
                                               : Accept::kOther;
  }
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (::getsockname(conn, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
      (local.ss_family == AF_INET || local.ss_family == AF_INET6)) {
    const int one = 1;
    ::setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  {
    // Counted before the sink has it: once it does, gRPC may serve the
    // connection's calls before this thread runs again.
    absl::MutexLock lock(&mu_);
    ++accepted_;
  }
  const absl::Status taken = sink_->Take(conn);
  absl::MutexLock lock(&mu_);
  if (!taken.ok()) --accepted_;
  if (absl::IsResourceExhausted(taken)) {
    ++shed_;
    *error = std::string(taken.message());
    return Accept::kExhausted;
  }
  if (!taken.ok()) return Accept::kOther;
  return Accept::kAccepted;
}

void ConnectionAcceptor::Shed(int fd) {
  for (int k = 0; k < 64 && reserve_ >= 0; ++k) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    int victim = -1;
    // Closing the reserve first makes each step free an fd before it takes
    // one; it still goes through the budget, like every allocation.
    if (!Allocate([&] {
          ::close(reserve_);
          victim = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (victim >= 0) ::close(victim);
          reserve_ = OpenReserve();
        })) {
      return;
    }
    if (victim < 0) return;
    absl::MutexLock lock(&mu_);
    ++shed_;
  }
}

void ConnectionAcceptor::Loop() {
  std::vector<pollfd> fds;
  absl::Duration backoff = options_.initial_backoff;
  std::string error;
  bool busy = false;
  while (true) {
    if (!accepting()) {
      // Out of fds: wait (or stop), then see whether one can be had again.
      pollfd wake{wake_[0], POLLIN, 0};
      if (::poll(&wake, 1,
                 static_cast<int>(absl::ToInt64Milliseconds(backoff))) > 0) {
        return;
      }
      if (!Probe()) {
        // Still none: tell the waiting clients at once (accept and close on
        // the reserve) rather than let them time out in the backlog.
        for (int fd : listen_fds_) Shed(fd);
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      backoff = options_.initial_backoff;
      // Leaves the state below, once an accept succeeds or the backlog is
      // empty.
    } else {
      fds.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      for (int fd : listen_fds_) fds.push_back({fd, POLLIN, 0});
      // After kBusy the backlog is still readable: wait a little for gRPC's
      // owed accept rather than spin.
      if (::poll(fds.data(), busy ? 1 : fds.size(), busy ? 2 : -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("listener: poll failed: {}; retrying", Errno());
        ::usleep(100000);
        continue;
      }
      if (fds[0].revents != 0) return;
    }
    bool exhausted = false;
    busy = false;
    for (int fd : listen_fds_) {
      // Take what the backlog holds, up to a bound so that one socket
      // cannot starve the others or the wake-up.
      for (int k = 0; k < 64 && !exhausted && !busy; ++k) {
        const Accept r = AcceptOne(fd, &error);
        exhausted = r == Accept::kExhausted;
        busy = r == Accept::kBusy;
        if (r == Accept::kEmpty) break;
      }
      if (exhausted || busy) break;
    }
    if (exhausted) {
      SetAccepting(false, error);
      for (int fd : listen_fds_) Shed(fd);
    } else if (!busy) {
      SetAccepting(true, "");
    }
  }
}

}  // namespace npuk
