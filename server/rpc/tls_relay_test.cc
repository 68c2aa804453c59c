#include "server/rpc/tls_relay.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/health/health_service.h"
#include "server/rpc/listener.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

std::string PathOf(const std::string& address) { return address.substr(5); }

// A plain unix listener standing in for gRPC's internal one; `serve` runs
// on its own thread for each accepted connection (blocking fd, closed after
// `serve` returns). accept_ = false: it listens but never accepts, as a
// listener gRPC has retired.
class FakeBackend {
 public:
  FakeBackend(const std::string& address, std::function<void(int)> serve,
              bool accept = true)
      : serve_(std::move(serve)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::unlink(PathOf(address).c_str());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    PathOf(address).copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 256), 0);
    if (accept) {
      thread_ = std::thread([this] { Loop(); });
    }
  }
  ~FakeBackend() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    for (std::thread& t : workers_) t.join();
    ::close(fd_);
  }
  int accepted() const { return accepted_; }

 private:
  void Loop() {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (stop_ || errno == EINVAL) return;
        continue;
      }
      ++accepted_;
      workers_.emplace_back([this, c] {
        serve_(c);
        ::close(c);
      });
    }
  }

  std::function<void(int)> serve_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;  // joined by the destructor only
};

void Echo(int fd) {
  char buf[16384];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(fd, buf + off, static_cast<size_t>(n - off));
      if (w <= 0) return;
      off += w;
    }
  }
}

bool WriteAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    const ssize_t w =
        ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

// Reads `n` bytes, or until EOF/error/timeout.
std::string ReadN(int fd, size_t n, int timeout_ms = 5000) {
  std::string out;
  char buf[65536];
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < n && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t r = ::read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

// True when `fd` reads EOF (or an error) within the timeout.
bool SeesEof(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::read(fd, &c, 1) <= 0;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class TlsRelayTest : public ::testing::Test {
 protected:
  void StartRelay(TlsRelayOptions options = {}) {
    options.parent_dir = ::testing::TempDir();
    options.name = "test";
    absl::StatusOr<std::unique_ptr<TlsRelay>> relay =
        TlsRelay::Create(std::move(options));
    ASSERT_TRUE(relay.ok()) << relay.status();
    relay_ = *std::move(relay);
  }
  // The client's end of a new connection whose other end the relay took.
  int Connect() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
    EXPECT_TRUE(relay_->Take(sv[1]).ok());
    return sv[0];
  }
  std::string Address(int i) const {
    return relay_->internal_addresses()[static_cast<size_t>(i)];
  }

  std::unique_ptr<TlsRelay> relay_;
};

TEST_F(TlsRelayTest, InternalSocketsAreInAPrivateDirectory) {
  StartRelay();
  ASSERT_EQ(relay_->internal_addresses().size(), 2u);
  const std::string path = PathOf(Address(0));
  const std::string dir = path.substr(0, path.rfind('/'));
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  relay_.reset();
  EXPECT_NE(::stat(dir.c_str(), &st), 0) << "the directory outlives the relay";
}

TEST_F(TlsRelayTest, RelaysBytesBothWays) {
  StartRelay();
  FakeBackend backend(Address(0), Echo);
  ASSERT_TRUE(relay_->Start().ok());
  const int c = Connect();
  ASSERT_TRUE(WriteAll(c, "hello"));
  EXPECT_EQ(ReadN(c, 5), "hello");
  const std::string big = RandomBytes(300000, 1);
  std::thread writer([&] { EXPECT_TRUE(WriteAll(c, big)); });
  EXPECT_EQ(ReadN(c, big.size()), big);
  writer.join();
  EXPECT_EQ(relay_->relayed(), 1u);
  EXPECT_EQ(relay_->open(), 1u);
  ::close(c);
  for (int i = 0; i < 200 && relay_->open() > 0; ++i) ::usleep(5000);
  EXPECT_EQ(relay_->open(), 0u);
}

TEST_F(TlsRelayTest, PassesHalfClosesOn) {
  StartRelay();
  // Reads until EOF, then answers with the byte count and closes.
  FakeBackend backend(Address(0), [](int fd) {
    size_t total = 0;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) total += n;
    WriteAll(fd, absl::StrCat("got ", total));
  });
  ASSERT_TRUE(relay_->Start().ok());
  const int c = Connect();
  ASSERT_TRUE(WriteAll(c, std::string(100000, 'x')));
  ASSERT_EQ(::shutdown(c, SHUT_WR), 0);
  EXPECT_EQ(ReadN(c, 64), "got 100000");  // ReadN stops at the EOF
  EXPECT_TRUE(SeesEof(c, 2000));
  ::close(c);
}

TEST_F(TlsRelayTest, ServerFirstBytesAndServerHalfClose) {
  StartRelay();
  // Answers the first byte, then half-closes and still reads.
  FakeBackend backend(Address(0), [](int fd) {
    char b;
    if (::read(fd, &b, 1) != 1) return;
    WriteAll(fd, "welcome");
    ::shutdown(fd, SHUT_WR);
    char buf[64];
    std::string rest;
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) rest.append(buf, n);
    EXPECT_EQ(rest, "more");
  });
  ASSERT_TRUE(relay_->Start().ok());
  const int c = Connect();
  ASSERT_TRUE(WriteAll(c, "x"));
  EXPECT_EQ(ReadN(c, 7), "welcome");
  EXPECT_TRUE(SeesEof(c, 2000));
  // The other direction still flows.
  ASSERT_TRUE(WriteAll(c, "more"));
  ::shutdown(c, SHUT_WR);
  ::usleep(100000);
  ::close(c);
}

TEST_F(TlsRelayTest, SlowReaderBoundsTheBuffers) {
  TlsRelayOptions options;
  options.max_buffer = 16 * 1024;
  StartRelay(options);
  const std::string up = RandomBytes(4 << 20, 2);
  const std::string down = RandomBytes(4 << 20, 3);
  std::string got_up;
  // got_up is the backend thread's until it says it is done.
  std::promise<void> backend_done;
  std::future<void> backend_finished = backend_done.get_future();
  FakeBackend backend(Address(0), [&](int fd) {
    std::thread w([&] { WriteAll(fd, down); });
    // Reads slowly: 8 KiB per millisecond.
    char buf[8192];
    while (got_up.size() < up.size()) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      got_up.append(buf, static_cast<size_t>(n));
      ::usleep(1000);
    }
    w.join();
    backend_done.set_value();
  });
  ASSERT_TRUE(relay_->Start().ok());
  const int c = Connect();
  std::thread writer([&] { EXPECT_TRUE(WriteAll(c, up)); });
  // The client reads slowly too.
  std::string got_down;
  char buf[8192];
  while (got_down.size() < down.size()) {
    pollfd p{c, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    const ssize_t n = ::read(c, buf, sizeof(buf));
    if (n <= 0) break;
    got_down.append(buf, static_cast<size_t>(n));
    ::usleep(500);
  }
  writer.join();
  ::close(c);
  for (int i = 0; i < 200 && relay_->open() > 0; ++i) ::usleep(5000);
  EXPECT_TRUE(got_down == down) << got_down.size() << " bytes";
  ASSERT_EQ(backend_finished.wait_for(std::chrono::seconds(30)),
            std::future_status::ready);
  EXPECT_TRUE(got_up == up) << got_up.size() << " bytes";
  EXPECT_GT(relay_->max_buffered(), 0u);
  EXPECT_LE(relay_->max_buffered(), options.max_buffer);
}

TEST_F(TlsRelayTest, HoldsBackAWriterWhoseReaderStopped) {
  TlsRelayOptions options;
  options.max_buffer = 16 * 1024;
  StartRelay(options);
  std::atomic<bool> done{false};
  // Reads one byte (so that the relay sees the accept), then nothing.
  FakeBackend backend(Address(0), [&](int fd) {
    char b;
    [[maybe_unused]] ssize_t n = ::read(fd, &b, 1);
    while (!done) ::usleep(1000);
  });
  ASSERT_TRUE(relay_->Start().ok());
  const int c = Connect();
  ::fcntl(c, F_SETFL, O_NONBLOCK);
  const std::string chunk(65536, 'y');
  size_t total = 0;
  auto stalled_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - stalled_since <
         std::chrono::milliseconds(300)) {
    const ssize_t w = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (w > 0) {
      total += static_cast<size_t>(w);
      stalled_since = std::chrono::steady_clock::now();
    } else {
      ::usleep(1000);
    }
    ASSERT_LT(total, size_t{64} << 20) << "the relay buffers without bound";
  }
  // Socket buffers on both sides plus the relay's 16 KiB.
  std::printf("writer held back after %zu bytes\n", total);
  EXPECT_LE(relay_->max_buffered(), options.max_buffer);
  done = true;
  ::close(c);
}

TEST_F(TlsRelayTest, ManyConnections) {
  StartRelay();
  FakeBackend backend(Address(0), Echo);
  ASSERT_TRUE(relay_->Start().ok());
  constexpr int kConns = 100;
  std::vector<int> clients;
  for (int i = 0; i < kConns; ++i) clients.push_back(Connect());
  for (int i = 0; i < kConns; ++i) {
    ASSERT_TRUE(WriteAll(clients[i], absl::StrCat("message ", i, ";")));
  }
  for (int i = 0; i < kConns; ++i) {
    const std::string want = absl::StrCat("message ", i, ";");
    EXPECT_EQ(ReadN(clients[i], want.size()), want);
  }
  EXPECT_EQ(relay_->relayed(), static_cast<uint64_t>(kConns));
  EXPECT_EQ(backend.accepted(), kConns);
  for (int c : clients) ::close(c);
}

// Figures, not limits: bulk throughput one way, and how fast a burst of
// new connections gets through the one-connect-at-a-time rule.
TEST_F(TlsRelayTest, ThroughputAndConnectRate) {
  StartRelay();
  std::atomic<size_t> sunk{0};
  FakeBackend backend(Address(0), [&](int fd) {
    char buf[65536];
    char first;
    if (::read(fd, &first, 1) != 1) return;
    WriteAll(fd, "k");  // the first byte of each connection is echoed
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) sunk += n;
  });
  ASSERT_TRUE(relay_->Start().ok());
  constexpr int kConns = 200;
  std::vector<int> clients;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kConns; ++i) {
    clients.push_back(Connect());
    ASSERT_TRUE(WriteAll(clients.back(), "k"));
  }
  for (int c : clients) EXPECT_EQ(ReadN(c, 1), "k");
  const double connect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const std::string chunk(1 << 20, 'z');
  constexpr int kMb = 64;
  const auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kMb; ++i) ASSERT_TRUE(WriteAll(clients[0], chunk));
  while (sunk < size_t{kMb} << 20 &&
         std::chrono::steady_clock::now() - t1 < std::chrono::seconds(60)) {
    ::usleep(1000);
  }
  const double bulk_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1)
          .count();
  EXPECT_EQ(sunk, size_t{kMb} << 20);
  std::printf(
      "[relay] %d new connections through the relay in %.0f ms (%.0f/s); "
      "%d MiB one way in %.0f ms (%.0f MiB/s)\n",
      kConns, connect_s * 1000, kConns / connect_s, kMb, bulk_s * 1000,
      kMb / bulk_s);
  for (int c : clients) ::close(c);
}

TEST_F(TlsRelayTest, ConnectsOnlyOnceTheClientSpeaks) {
  TlsRelayOptions options;
  options.first_byte_timeout = absl::Milliseconds(200);
  StartRelay(options);
  FakeBackend backend(Address(0), Echo);
  ASSERT_TRUE(relay_->Start().ok());
  const int silent = Connect();
  // Closed after the timeout (checked once a second), never connected.
  EXPECT_TRUE(SeesEof(silent, 3000));
  EXPECT_EQ(backend.accepted(), 0);
  EXPECT_EQ(relay_->relayed(), 0u);
  ::close(silent);
}

TEST_F(TlsRelayTest, SeesTheAcceptWithoutAnAnswer) {
  TlsRelayOptions options;
  options.lost_after = absl::Seconds(20);
  StartRelay(options);
  std::atomic<bool> done{false};
  // Reads and never answers: the relay learns of the accept from its
  // emptied send queue, and connects the next client at once.
  FakeBackend backend(Address(0), [&](int fd) {
    char buf[64];
    [[maybe_unused]] ssize_t n = ::read(fd, buf, sizeof(buf));
    while (!done) ::usleep(1000);
  });
  ASSERT_TRUE(relay_->Start().ok());
  const int a = Connect();
  const int b = Connect();
  ASSERT_TRUE(WriteAll(a, "a"));
  ASSERT_TRUE(WriteAll(b, "b"));
  const auto start = std::chrono::steady_clock::now();
  while (backend.accepted() < 2 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    ::usleep(1000);
  }
  EXPECT_EQ(backend.accepted(), 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  done = true;
  ::close(a);
  ::close(b);
}

TEST_F(TlsRelayTest, LostListenerSwitchesToTheSpareThenReports) {
  TlsRelayOptions options;
  options.lost_after = absl::Milliseconds(300);
  std::atomic<int> lost_calls{0};
  std::string reason;
  options.on_lost = [&](const std::string& r) {
    reason = r;
    ++lost_calls;
  };
  StartRelay(options);
  {
    // Listener 0 never accepts (gRPC retired it); 1 serves.
    FakeBackend dead(Address(0), Echo, /*accept=*/false);
    FakeBackend spare(Address(1), Echo);
    ASSERT_TRUE(relay_->Start().ok());
    const int first = Connect();
    ASSERT_TRUE(WriteAll(first, "x"));
    EXPECT_TRUE(SeesEof(first, 3000));  // given up with its listener
    ::close(first);
    EXPECT_EQ(relay_->lost(), 1);
    EXPECT_EQ(lost_calls, 0);
    const int second = Connect();
    ASSERT_TRUE(WriteAll(second, "hi"));
    EXPECT_EQ(ReadN(second, 2), "hi");
    ::close(second);
  }
  // Now the spare is gone too (its socket closed: connects are refused, not
  // lost); a listener that takes connects and never accepts is lost.
  FakeBackend dead_spare(Address(1), Echo, /*accept=*/false);
  const int third = Connect();
  ASSERT_TRUE(WriteAll(third, "x"));
  EXPECT_TRUE(SeesEof(third, 3000));
  ::close(third);
  for (int i = 0; i < 100 && lost_calls == 0; ++i) ::usleep(10000);
  EXPECT_EQ(lost_calls, 1);
  EXPECT_THAT(reason, HasSubstr("restart npukd"));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const absl::Status refused = relay_->Take(sv[1]);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(SeesEof(sv[0], 1000));
  ::close(sv[0]);
}

TEST_F(TlsRelayTest, StopClosesWhatIsLeft) {
  StartRelay();
  FakeBackend backend(Address(0), Echo);
  ASSERT_TRUE(relay_->Start().ok());
  const int relaying = Connect();
  ASSERT_TRUE(WriteAll(relaying, "x"));
  EXPECT_EQ(ReadN(relaying, 1), "x");
  const int silent = Connect();
  relay_->Stop();
  relay_->Stop();  // idempotent
  EXPECT_TRUE(SeesEof(relaying, 1000));
  EXPECT_TRUE(SeesEof(silent, 1000));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_FALSE(relay_->Take(sv[1]).ok());
  ::close(sv[0]);
  ::close(relaying);
  ::close(silent);
}

TEST(FdBudgetTest, RunWaitsWhileAnAcceptIsOwed) {
  FdBudget budget;
  EXPECT_TRUE(budget.Run(absl::ZeroDuration(), [] { return true; }));
  EXPECT_TRUE(budget.owed());
  bool ran = false;
  EXPECT_FALSE(budget.Run(absl::Milliseconds(20), [&] {
    ran = true;
    return false;
  }));
  EXPECT_FALSE(ran);
  std::thread payer([&] {
    ::usleep(20000);
    budget.Paid();
  });
  EXPECT_TRUE(budget.Run(absl::Seconds(5), [&] {
    ran = true;
    return false;
  }));
  EXPECT_TRUE(ran);
  payer.join();
}

// ---- with gRPC: mutual TLS through the relay ----

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TlsRelayGrpcTest, MutualTlsThroughTheRelay) {
  char tmpl[] = "/tmp/npuk-relay-certs-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string script = absl::StrCat(
      "set -e; cd ", dir, "; exec >openssl.log 2>&1;",
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
      "-days 1 -subj /CN=npuk-test-ca;",
      "openssl req -newkey rsa:2048 -nodes -keyout server.key -out "
      "server.csr -subj /CN=localhost;",
      "printf 'subjectAltName=DNS:localhost' > server.ext;",
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out server.pem -days 1 -extfile server.ext;",
      "openssl req -newkey rsa:2048 -nodes -keyout client.key -out "
      "client.csr -subj /CN=npuk-test-client;",
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out client.pem -days 1");
  ASSERT_EQ(std::system(("bash -c \"" + script + "\"").c_str()), 0)
      << ReadText(dir + "/openssl.log");
  const std::string ca = ReadText(dir + "/ca.pem");

  grpc::SslServerCredentialsOptions tls(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls.pem_root_certs = ca;
  tls.pem_key_cert_pairs.push_back(
      {ReadText(dir + "/server.key"), ReadText(dir + "/server.pem")});
  absl::StatusOr<std::unique_ptr<TlsRelay>> relay =
      TlsRelay::Create({.parent_dir = ::testing::TempDir(), .name = "grpc"});
  ASSERT_TRUE(relay.ok()) << relay.status();
  HealthService health({"mel"});
  health.SetServing("mel", true);
  grpc::ServerBuilder builder;
  for (const std::string& a : (*relay)->internal_addresses()) {
    builder.AddListeningPort(a, grpc::SslServerCredentials(tls));
  }
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE((*relay)->Start().ok());
  absl::StatusOr<TcpListener> tcp = ListenTcp("127.0.0.1:0");
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  ConnectionAcceptor acceptor(tcp->fds);
  ASSERT_TRUE(acceptor.Start(relay->get()).ok());

  // The certificate names localhost only: the client dials 127.0.0.1 and
  // checks the name it was told.
  auto check = [&](bool with_cert) {
    grpc::SslCredentialsOptions client;
    client.pem_root_certs = ca;
    if (with_cert) {
      client.pem_private_key = ReadText(dir + "/client.key");
      client.pem_cert_chain = ReadText(dir + "/client.pem");
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", tcp->port),
                                  grpc::SslCredentials(client), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service("mel");
    grpc::health::v1::HealthCheckResponse resp;
    const grpc::Status s = stub->Check(&ctx, req, &resp);
    return s.ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  };
  EXPECT_TRUE(check(/*with_cert=*/true));
  EXPECT_FALSE(check(/*with_cert=*/false));
  EXPECT_GE((*relay)->relayed(), 2u);
  EXPECT_EQ((*relay)->lost(), 0);

  // Drain order: the acceptor, the server, then the relay.
  acceptor.Stop();
  health.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  (*relay)->Stop();
  EXPECT_EQ((*relay)->open(), 0u);
}

}  // namespace
}  // namespace npuk
