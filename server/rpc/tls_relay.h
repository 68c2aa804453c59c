// TLS listeners that survive fd exhaustion.
//
// gRPC 1.51 retires a listening port for good after one accept4 error other
// than EAGAIN/ECONNABORTED (listener.h), and it cannot take a secure
// connection from an fd. So for a TLS listen address npukd owns the public
// socket (ConnectionAcceptor: fd reserve, shedding, the "cannot accept"
// state, backoff, health) and the TlsRelay below, a ConnectionSink, relays
// each connection byte for byte to a gRPC TLS listener that gRPC serves on
// a unix socket in a private 0700 directory. TLS stays end to end (the
// client's certificate is checked by gRPC as before); gRPC sees a unix peer,
// so the relay logs the real one at debug level.
//
// gRPC's own accept4 on that internal socket must never fail. npukd cannot
// reserve an fd for another thread's accept4, so it arranges that one is
// free whenever gRPC has an accept to make:
//   - The relay connects to gRPC only once the client has sent its first
//     bytes (a TLS ClientHello), so a silent client costs one fd, not three,
//     and gRPC reads those bytes at once after its accept: the relay sees
//     its send queue (SIOCOUTQ) empty, a byte from gRPC or a close, and
//     knows the accept happened ("confirmed").
//   - Just before it connects, the relay closes its two spare fds: one for
//     gRPC's accepted connection, one for the accept4 that ends gRPC's
//     accept loop with EAGAIN (the kernel takes the fd before it looks at
//     the backlog: on an empty backlog with no free fd accept4 fails
//     EMFILE, which retires the listener too). The spares are kept at the
//     lowest fd numbers (an fd at or above RLIMIT_NOFILE, e.g. after a
//     prlimit that lowered it, frees nothing usable when closed).
//   - From the connect until the confirmation (and 2 ms more when fewer
//     than two other fds were free), gRPC is owed those fds (FdBudget,
//     listener.h): neither the relay nor the acceptor opens an fd, not even
//     to probe. So one connect is in flight at a time; the others wait
//     their turn (under a millisecond each, a few when fds are tight). Then the
//     relay re-takes its spares; when it cannot, the next connect sheds its
//     connection, and Take() reports RESOURCE_EXHAUSTED (the acceptor's
//     "cannot accept" state) until a connection's 3 fds can be had again.
//   - Threads that do not go through the budget (the REST and metrics
//     listeners) could still take those fds in the instant between the
//     close and gRPC's accept4. So the relay watches: a connect that stays
//     unconfirmed for `lost_after` means gRPC no longer accepts on that
//     socket. The relay then closes that connection, switches to the next
//     internal listener (gRPC serves `internal_addresses()`, one spare by
//     default) and logs an error; when none is left it calls on_lost (the
//     daemon: health NOT_SERVING, "restart npukd") and refuses every new
//     connection at once.
//
// Each TLS connection costs three fds (the client's, the relay's end of the
// internal connection, gRPC's end); the relay itself one epoll, one
// eventfd, its two spares and, in gRPC, one listening socket per internal
// address.
//
// Relaying: one thread, epoll, non-blocking sockets. Each direction buffers
// at most `max_buffer` bytes and stops reading its source while that buffer
// is full, so a client that stops reading holds back gRPC's writes (and
// HTTP/2 flow control works end to end, as without the relay). A side's EOF
// is passed on with shutdown(SHUT_WR) once its buffer is written; an error
// on either side closes both.
//
// Usage (daemon):
//   NPUK_ASSIGN_OR_RETURN(auto relay, TlsRelay::Create({...}));
//   for (const std::string& a : relay->internal_addresses())
//     builder.AddListeningPort(a, tls_credentials);
//   server = builder.BuildAndStart();
//   relay->Start();  acceptor.Start(relay.get());
//   ... drain: acceptor.Stop(); server->Shutdown() (gRPC closes the
//   relayed connections, which keep flowing until then); relay->Stop().
#ifndef NPUK_SERVER_RPC_TLS_RELAY_H_
#define NPUK_SERVER_RPC_TLS_RELAY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/rpc/listener.h"

namespace npuk {

struct TlsRelayOptions {
  // Where the private directory is made (mkdtemp, 0700); /tmp when it
  // cannot be.
  std::string parent_dir = "/tmp";
  // Internal gRPC listeners: the one in use and spares.
  int listeners = 2;
  size_t max_buffer = 64 * 1024;  // per connection and direction
  // A client that has sent nothing by then is closed (gRPC's own default
  // handshake timeout, which only starts once the relay connects).
  absl::Duration first_byte_timeout = absl::Seconds(120);
  // An unconfirmed connect older than this means the listener is lost.
  absl::Duration lost_after = absl::Seconds(3);
  // Called (from the relay thread, once) when no internal listener is left,
  // with what to tell the operator.
  std::function<void(const std::string& reason)> on_lost;
  std::string name;  // log name, e.g. the public listen address
};

// Thread safety: Take, HasHeadroom and budget() from the acceptor thread;
// Start and Stop once each from any thread; the accessors from any thread.
class TlsRelay final : public ConnectionSink {
 public:
  // Makes the private directory; INTERNAL when it cannot.
  static absl::StatusOr<std::unique_ptr<TlsRelay>> Create(
      TlsRelayOptions options);
  ~TlsRelay() override;  // Stop()s; removes the directory.
  TlsRelay(const TlsRelay&) = delete;
  TlsRelay& operator=(const TlsRelay&) = delete;

  // "unix:/.../N.sock" for each internal listener, for AddListeningPort.
  std::vector<std::string> internal_addresses() const;

  // Starts the relay thread: after the server serves internal_addresses().
  absl::Status Start();
  // Closes every connection still open and joins the thread: after the
  // server's Shutdown. Idempotent.
  void Stop();

  // ConnectionSink.
  absl::Status Take(int fd) override;
  bool HasHeadroom() override;
  FdBudget* budget() override { return &budget_; }

  uint64_t relayed() const;  // connections connected to gRPC so far
  uint64_t open() const;     // connections open now
  // Connections closed because fds ran out (after Take took them).
  uint64_t shed() const;
  // Internal listeners found lost.
  int lost() const;
  // The most bytes buffered in one direction of one connection so far.
  size_t max_buffered() const;

 private:
  struct Conn;
  struct Direction;
  explicit TlsRelay(TlsRelayOptions options, std::string dir);

  void Loop();
  // Registers the connections Take queued.
  void AdoptIncoming();
  // Connects waiting connections to gRPC, one at a time: only while gRPC
  // is owed nothing.
  void ConnectNext();
  // Whether gRPC took the in-flight connect: pays the budget and re-takes
  // the spare when it did; after lost_after, gives that listener up.
  void CheckInFlight(absl::Time now);
  // Reads and writes both directions until EAGAIN, full buffers or
  // kRounds; closes the connection when it is done or failed.
  void Service(Conn* c);
  // Writes what `d` holds to `to` and reads from `from` while there is
  // room (-1: that side is not there); false on a socket error.
  bool Pump(Conn* c, Direction& d, int from, int to, bool* moved);
  void Close(Conn* c, const char* why);
  void ExpireSilent(absl::Time now);
  // Opens the missing spares; false (errno set) when it cannot.
  // REQUIRES: inside budget_.Run.
  bool TakeSpares();
  // Whether `n` more fds can be opened now. REQUIRES: inside budget_.Run.
  static bool CanOpen(int n);
  // CanOpen(n) inside the budget; true when gRPC stays owed an accept for
  // kBudgetWait (the connect step checks again).
  bool Headroom(int n);

  const TlsRelayOptions options_;
  const std::string dir_;
  FdBudget budget_;
  int epoll_ = -1;
  int wake_ = -1;  // eventfd: Take and Stop wake the loop
  std::thread thread_;

  // Relay thread only (after Start).
  std::vector<int> spares_;  // closed just before each connect to gRPC
  int current_ = 0;          // internal listener in use
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;  // freed after each wake-up
  std::deque<Conn*> waiting_;  // have bytes, wait for their connect
  std::vector<Conn*> again_;   // stopped after kRounds with more to do
  Conn* in_flight_ = nullptr;  // connected, not yet seen accepted by gRPC
  absl::Time in_flight_since_;
  absl::Time heard_at_ = absl::InfiniteFuture();  // in_flight_ confirmed
  bool tight_ = false;  // in_flight_ was connected with < 2 fds to spare
  absl::Time next_expiry_check_;
  std::vector<char> scratch_;
  size_t max_buffered_seen_ = 0;

  mutable absl::Mutex mu_;
  std::vector<int> incoming_ ABSL_GUARDED_BY(mu_);
  uint64_t open_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool all_lost_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t relayed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t shed_ ABSL_GUARDED_BY(mu_) = 0;
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
  size_t max_buffered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_TLS_RELAY_H_
