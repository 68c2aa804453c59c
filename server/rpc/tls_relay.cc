#include "server/rpc/tls_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace npuk {
namespace {

// How long Take waits for gRPC's owed accept before it queues the
// connection unprobed (the connect step checks the fds again).
constexpr absl::Duration kBudgetWait = absl::Milliseconds(10);
// Rounds of reading and writing per connection and wake-up, so that one
// fast connection cannot starve the others.
constexpr int kRounds = 16;
constexpr absl::Duration kExpiryPeriod = absl::Seconds(1);
// gRPC reads the client's bytes (on any of its poller threads) once its
// accept loop has registered the connection, possibly just before that loop
// makes its last accept4: when fds are tight, the spares stay released this
// much longer.
constexpr absl::Duration kAcceptLoopGrace = absl::Milliseconds(2);
constexpr size_t kSpares = 2;
constexpr absl::Duration kInFlightPoll = absl::Microseconds(100);

std::string Errno(int err) { return std::strerror(err); }

bool FdExhausted(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int OpenSpare() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

std::string PeerName(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return "?";
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in->sin6_port));
  }
  return "unix";
}

}  // namespace

// One direction of a connection: bytes read from its source and not yet
// written to its sink.
struct TlsRelay::Direction {
  std::vector<char> buf;
  size_t off = 0;     // buf[off..] is pending
  bool eof = false;   // the source has closed its side
  bool shut = false;  // and that EOF was passed on
  size_t pending() const { return buf.size() - off; }
};

struct TlsRelay::Conn {
  enum class State {
    kSilent,    // nothing from the client yet
    kWaiting,   // has the client's first bytes, waits for its connect
    kInFlight,  // connected, gRPC not yet seen to accept
    kRelaying,
  };
  uint64_t id = 0;
  int outer = -1;
  int inner = -1;
  std::string peer;
  Direction up;    // client -> gRPC
  Direction down;  // gRPC -> client
  State state = State::kSilent;
  absl::Time accepted_at;
  size_t written_up = 0;  // bytes written to gRPC so far
  bool heard = false;     // gRPC sent a byte, closed or failed
  bool closing = false;   // to close once gRPC took its connect
  bool closed = false;
};

absl::StatusOr<std::unique_ptr<TlsRelay>> TlsRelay::Create(
    TlsRelayOptions options) {
  std::string dir;
  for (const std::string& parent : {options.parent_dir, std::string("/tmp")}) {
    std::string tmpl = absl::StrCat(parent, "/npukd-tls-XXXXXX");
    // mkdtemp makes it 0700: only npukd's user (and root) can connect.
    if (::mkdtemp(tmpl.data()) != nullptr) {
      dir = tmpl;
      break;
    }
  }
  if (dir.empty()) {
    return absl::InternalError(
        absl::StrCat("TLS relay: cannot make a private directory in ",
                     options.parent_dir, " or /tmp: ", Errno(errno)));
  }
  if (options.listeners < 1) options.listeners = 1;
  return std::unique_ptr<TlsRelay>(new TlsRelay(std::move(options), dir));
}

TlsRelay::TlsRelay(TlsRelayOptions options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)) {}

TlsRelay::~TlsRelay() {
  Stop();
  if (epoll_ >= 0) ::close(epoll_);
  if (wake_ >= 0) ::close(wake_);
  for (int fd : spares_) ::close(fd);
  for (int i = 0; i < options_.listeners; ++i) {
    ::unlink(absl::StrCat(dir_, "/", i, ".sock").c_str());
  }
  ::rmdir(dir_.c_str());
}

std::vector<std::string> TlsRelay::internal_addresses() const {
  std::vector<std::string> out;
  for (int i = 0; i < options_.listeners; ++i) {
    out.push_back(absl::StrCat("unix:", dir_, "/", i, ".sock"));
  }
  return out;
}

absl::Status TlsRelay::Start() {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_ < 0 || wake_ < 0 || !TakeSpares()) {
    return absl::InternalError(
        absl::StrCat("TLS relay: cannot make its epoll, eventfd or spare fds: ",
                     Errno(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev) != 0) {
    return absl::InternalError(
        absl::StrCat("TLS relay: epoll_ctl failed: ", Errno(errno)));
  }
  scratch_.resize(options_.max_buffer);
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
  }
  spdlog::info("TLS relay: {} -> gRPC on {}", options_.name,
               absl::StrCat(dir_, "/0.sock"));
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void TlsRelay::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (wake_ >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = ::write(wake_, &one, sizeof(one));
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  for (int fd : incoming_) ::close(fd);
  incoming_.clear();
}

bool TlsRelay::TakeSpares() {
  // Lowest numbers first: an fd at or above RLIMIT_NOFILE (an operator can
  // lower the limit below fds already open, e.g. with prlimit) frees nothing
  // gRPC's accept4 could use when closed.
  for (int& fd : spares_) {
    const int low = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (low < 0) break;
    if (low < fd) {
      ::close(fd);
      fd = low;
    } else {
      ::close(low);
    }
  }
  while (spares_.size() < kSpares) {
    const int fd = OpenSpare();
    if (fd < 0) return false;
    spares_.push_back(fd);
  }
  return true;
}

bool TlsRelay::CanOpen(int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    const int fd = OpenSpare();
    if (fd < 0) break;
    fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  return static_cast<int>(fds.size()) == n;
}

bool TlsRelay::Headroom(int n) {
  bool ok = true;
  // Busy (gRPC owes an accept): the connect step checks again.
  budget_.Run(kBudgetWait, [&] {
    ok = CanOpen(n);
    return false;
  });
  return ok;
}

// A new connection: the client's fd, the relay's end and gRPC's.
bool TlsRelay::HasHeadroom() { return Headroom(3); }

absl::Status TlsRelay::Take(int fd) {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || stopping_) {
      ::close(fd);
      return absl::UnavailableError("TLS relay: stopped");
    }
    if (all_lost_) {
      ::close(fd);
      return absl::FailedPreconditionError(
          "TLS relay: gRPC accepts on none of its internal listeners; "
          "restart npukd");
    }
  }
  // An inherited or test socket may be blocking; the relay never waits.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  // The client's fd is open already.
  if (!Headroom(2)) {
    ::close(fd);
    absl::MutexLock lock(&mu_);
    ++shed_;
    return absl::ResourceExhaustedError(
        "no fds left for the TLS relay (a TLS connection needs 3: the "
        "client's, the relay's and gRPC's)");
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      // Stop() may have closed incoming_ already.
      ::close(fd);
      return absl::UnavailableError("TLS relay: stopped");
    }
    incoming_.push_back(fd);
  }
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = ::write(wake_, &one, sizeof(one));
  return absl::OkStatus();
}

uint64_t TlsRelay::relayed() const {
  absl::MutexLock lock(&mu_);
  return relayed_;
}

uint64_t TlsRelay::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

uint64_t TlsRelay::shed() const {
  absl::MutexLock lock(&mu_);
  return shed_;
}

int TlsRelay::lost() const {
  absl::MutexLock lock(&mu_);
  return lost_;
}

size_t TlsRelay::max_buffered() const {
  absl::MutexLock lock(&mu_);
  return max_buffered_;
}

void TlsRelay::AdoptIncoming() {
  std::vector<int> fds;
  {
    absl::MutexLock lock(&mu_);
    fds.swap(incoming_);
    open_ += fds.size();
  }
  const absl::Time now = absl::Now();
  for (int fd : fds) {
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->outer = fd;
    c->accepted_at = now;
    c->peer = PeerName(fd);
    spdlog::debug("TLS relay {}: connection {} from {}", options_.name, c->id,
                  c->peer);
    epoll_event ev{};
    // Edge-triggered: Service() reads and writes until EAGAIN or a full
    // buffer, and is called again when the other side drains it.
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c.get();
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      spdlog::error("TLS relay: epoll_ctl failed: {}", Errno(errno));
      ::close(fd);
      absl::MutexLock lock(&mu_);
      --open_;
      continue;
    }
    conns_.emplace(c->id, std::move(c));
  }
}

bool TlsRelay::Pump(Conn* c, Direction& d, int from, int to, bool* moved) {
  const bool inner_side = from >= 0 && from == c->inner;
  // Write what is pending.
  while (to >= 0 && d.pending() > 0) {
    const ssize_t w =
        ::send(to, d.buf.data() + d.off, d.pending(), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    d.off += static_cast<size_t>(w);
    if (&d == &c->up) c->written_up += static_cast<size_t>(w);
    *moved = true;
  }
  if (d.pending() == 0) {
    d.buf.clear();
    d.off = 0;
  }
  // Read while there is room.
  if (from >= 0 && !d.eof && d.pending() < options_.max_buffer) {
    const size_t room = options_.max_buffer - d.pending();
    const ssize_t n = ::recv(from, scratch_.data(), room, 0);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      if (inner_side) c->heard = true;
      return false;
    }
    if (n >= 0 && inner_side) c->heard = true;
    if (n == 0) {
      d.eof = true;
      *moved = true;
    } else if (n > 0) {
      *moved = true;
      size_t done = 0;
      if (to >= 0 && d.pending() == 0) {
        const ssize_t w =
            ::send(to, scratch_.data(), static_cast<size_t>(n), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
        if (w > 0) {
          done = static_cast<size_t>(w);
          if (&d == &c->up) c->written_up += done;
        }
      }
      if (done < static_cast<size_t>(n)) {
        if (d.off > 0) {
          d.buf.erase(d.buf.begin(),
                      d.buf.begin() + static_cast<std::ptrdiff_t>(d.off));
          d.off = 0;
        }
        d.buf.insert(d.buf.end(), scratch_.data() + done, scratch_.data() + n);
        if (d.pending() > max_buffered_seen_) {
          max_buffered_seen_ = d.pending();
          absl::MutexLock lock(&mu_);
          max_buffered_ = max_buffered_seen_;
        }
      }
    }
  }
  // Pass the EOF on once everything before it is written.
  if (d.eof && !d.shut && d.pending() == 0 && to >= 0) {
    ::shutdown(to, SHUT_WR);
    d.shut = true;
    *moved = true;
  }
  return true;
}

void TlsRelay::Service(Conn* c) {
  if (c->closed) return;
  for (int round = 0; round < kRounds; ++round) {
    bool moved = false;
    if (!Pump(c, c->up, c->outer, c->inner, &moved) ||
        (c->inner >= 0 && !Pump(c, c->down, c->inner, c->outer, &moved))) {
      Close(c, "error");
      return;
    }
    if (c->state == Conn::State::kSilent) {
      if (c->up.pending() > 0) {
        c->state = Conn::State::kWaiting;
        waiting_.push_back(c);
      } else if (c->up.eof) {
        Close(c, "closed before sending anything");
        return;
      }
    }
    if (c->up.shut && c->down.shut) {
      Close(c, "done");
      return;
    }
    if (!moved) return;
  }
  // More to do: again after the next epoll_wait (no new edge would come).
  again_.push_back(c);
}

void TlsRelay::ConnectNext() {
  while (in_flight_ == nullptr && !waiting_.empty()) {
    Conn* c = waiting_.front();
    waiting_.pop_front();
    if (c->closed) continue;
    bool lost = false;
    {
      absl::MutexLock lock(&mu_);
      lost = all_lost_;
    }
    if (lost) {
      Close(c, "no internal listener left");
      continue;
    }
    const std::string path = absl::StrCat(dir_, "/", current_, ".sock");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(),
                std::min(path.size(), sizeof(addr.sun_path) - 1));
    int err = 0;
    int inner = -1;
    // Nothing is owed while no connect is in flight: this runs at once.
    budget_.Run(absl::ZeroDuration(), [&] {
      if (!TakeSpares()) {
        err = errno;
        return false;
      }
      inner = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (inner < 0) {
        err = errno;
        return false;
      }
      // With two fds to spare besides the spares, re-taking the spares
      // cannot take the fd of gRPC's last accept4, however late it comes.
      tight_ = !CanOpen(2);
      // gRPC's accept4 gets these back: one for the connection, one for
      // the accept4 after it, which ends gRPC's accept loop with EAGAIN
      // only if it finds a free fd (the kernel takes the fd before it looks
      // at the backlog, so an empty backlog and no fd is EMFILE too).
      for (int fd : spares_) ::close(fd);
      spares_.clear();
      if (::connect(inner, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
          0) {
        err = errno;
        ::close(inner);
        inner = -1;
        TakeSpares();
        return false;
      }
      return true;
    });
    if (inner < 0) {
      if (FdExhausted(err)) {
        {
          absl::MutexLock lock(&mu_);
          ++shed_;
        }
        Close(c, "out of fds");
      } else {
        // ECONNREFUSED/ENOENT: the server is shutting down.
        spdlog::debug("TLS relay {}: connect to {} failed: {}", options_.name,
                      path, Errno(err));
        Close(c, "gRPC refused the connect");
      }
      continue;
    }
    c->inner = inner;
    {
      absl::MutexLock lock(&mu_);
      ++relayed_;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;  // Service() serves both sides
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, inner, &ev);
    c->state = Conn::State::kInFlight;
    in_flight_ = c;
    in_flight_since_ = absl::Now();
    Service(c);
  }
}

void TlsRelay::CheckInFlight(absl::Time now) {
  Conn* c = in_flight_;
  if (c == nullptr) return;
  int queued = -1;
  if (!c->heard && c->written_up > 0 &&
      ::ioctl(c->inner, SIOCOUTQ, &queued) == 0 && queued == 0) {
    // gRPC read what the relay wrote: it has accepted.
    c->heard = true;
  }
  if (c->heard && heard_at_ == absl::InfiniteFuture()) heard_at_ = now;
  if (c->heard && tight_ && now - heard_at_ < kAcceptLoopGrace) return;
  if (c->heard) {
    in_flight_ = nullptr;
    heard_at_ = absl::InfiniteFuture();
    budget_.Paid();
    // Re-take the spares now, while nothing is owed; when they cannot be
    // had the next connect tries again (and sheds if it still cannot).
    budget_.Run(absl::ZeroDuration(), [&] {
      TakeSpares();
      return false;
    });
    if (c->closing) {
      Close(c, "closed while connecting");
    } else {
      c->state = Conn::State::kRelaying;
    }
    return;
  }
  if (now - in_flight_since_ < options_.lost_after) return;
  // gRPC has not accepted for lost_after: it has retired that listener
  // (a "Failed accept4" in its log). Its accept, should it ever come, no
  // longer matters: the relay moves on.
  const std::string was = absl::StrCat(dir_, "/", current_, ".sock");
  in_flight_ = nullptr;
  budget_.Paid();
  ++current_;
  int lost = 0;
  {
    absl::MutexLock lock(&mu_);
    lost = ++lost_;
    all_lost_ = current_ >= options_.listeners;
  }
  c->closing = false;
  Close(c, "internal listener lost");
  if (current_ < options_.listeners) {
    spdlog::error(
        "TLS relay {}: gRPC stopped accepting on its internal listener {} "
        "(no accept for {}; gRPC 1.51 retires a listener after one accept "
        "error); switched to the spare {}/{}.sock ({} of {} lost): restart "
        "npukd soon",
        options_.name, was, absl::FormatDuration(options_.lost_after), dir_,
        current_, lost, options_.listeners);
    return;
  }
  const std::string reason = absl::StrCat(
      "gRPC stopped accepting on every internal TLS listener of ",
      options_.name,
      " (gRPC 1.51 retires a listener after one accept error); restart npukd");
  spdlog::error("TLS relay: {}", reason);
  const std::deque<Conn*> waiting = waiting_;  // Close edits waiting_
  for (Conn* w : waiting) Close(w, "no internal listener left");
  if (options_.on_lost) options_.on_lost(reason);
}

void TlsRelay::Close(Conn* c, const char* why) {
  if (c->closed) return;
  if (c == in_flight_) {
    // gRPC still owes its accept of this connection (closing the relay's
    // end would not take it out of gRPC's backlog): keep that end until
    // CheckInFlight sees the accept.
    c->closing = true;
    if (c->outer >= 0) ::close(c->outer);
    c->outer = -1;
    return;
  }
  spdlog::debug("TLS relay {}: connection {} from {} closed: {}", options_.name,
                c->id, c->peer, why);
  if (c->outer >= 0) ::close(c->outer);
  if (c->inner >= 0) ::close(c->inner);
  c->outer = c->inner = -1;
  c->closed = true;
  if (c->state == Conn::State::kWaiting) {
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), c),
                   waiting_.end());
  }
  again_.erase(std::remove(again_.begin(), again_.end(), c), again_.end());
  if (in_flight_ == nullptr) {
    // Its fds are free: move the spares down into them.
    budget_.Run(absl::ZeroDuration(), [&] {
      TakeSpares();
      return false;
    });
  }
  auto it = conns_.find(c->id);
  if (it != conns_.end()) {
    dead_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  absl::MutexLock lock(&mu_);
  --open_;
}

void TlsRelay::ExpireSilent(absl::Time now) {
  if (now < next_expiry_check_) return;
  next_expiry_check_ = now + kExpiryPeriod;
  std::vector<Conn*> expired;
  for (auto& [id, c] : conns_) {
    if (c->state == Conn::State::kSilent &&
        now - c->accepted_at >= options_.first_byte_timeout) {
      expired.push_back(c.get());
    }
  }
  for (Conn* c : expired) Close(c, "sent nothing in time");
}

void TlsRelay::Loop() {
  std::vector<epoll_event> events(64);
  while (true) {
    // While a connect is in flight the relay polls its send queue: every
    // 100 us, since nothing else may open an fd meanwhile.
    absl::Duration timeout = kExpiryPeriod;
    if (in_flight_ != nullptr) timeout = kInFlightPoll;
    if (!again_.empty()) timeout = absl::ZeroDuration();
    const timespec ts = absl::ToTimespec(timeout);
    const int n = ::epoll_pwait2(epoll_, events.data(),
                                 static_cast<int>(events.size()), &ts, nullptr);
    if (n < 0 && errno != EINTR) {
      spdlog::error("TLS relay: epoll_wait failed: {}; retrying", Errno(errno));
      ::usleep(100000);
    }
    bool woken = false;
    for (int i = 0; i < n; ++i) {
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (c == nullptr) {
        woken = true;
        continue;
      }
      Service(c);
    }
    if (woken) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_, &count, sizeof(count));
      bool stopping = false;
      {
        absl::MutexLock lock(&mu_);
        stopping = stopping_;
      }
      if (stopping) break;
      AdoptIncoming();
    }
    std::vector<Conn*> again;
    again.swap(again_);
    for (Conn* c : again) Service(c);
    const absl::Time now = absl::Now();
    CheckInFlight(now);
    ConnectNext();
    ExpireSilent(now);
    dead_.clear();
  }
  // After the server's Shutdown: what is left has no gRPC end that matters.
  in_flight_ = nullptr;
  budget_.Paid();
  std::vector<Conn*> all;
  for (auto& [id, c] : conns_) all.push_back(c.get());
  for (Conn* c : all) Close(c, "relay stopped");
  dead_.clear();
}

}  // namespace npuk
