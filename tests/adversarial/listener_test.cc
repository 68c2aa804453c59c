// The listener under fd exhaustion and careless operators (issue 13 items
// 1 and 6): the daemon's own acceptor recovers once fds are free again and
// health says NOT_SERVING while it cannot accept, on insecure and on TLS
// listeners (whose connections go through the relay to gRPC's internal
// listener, which must never see an EMFILE); one daemon per socket; the
// socket is never wider than its mode.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using std::chrono::milliseconds;

int FreeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A raw connection to `target` (unix:PATH or 127.0.0.1:PORT) that never
// speaks: it only costs the daemon an fd once accepted. -1 on failure.
int RawConnect(const std::string& target) {
  if (target.rfind("unix:", 0) == 0) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = target.substr(5);
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(
      static_cast<uint16_t>(std::stoi(target.substr(target.rfind(':') + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The lowest fd number `pid` does not have open: the next one it gets.
int LowestFreeFd(pid_t pid) {
  std::vector<bool> used;
  for (const auto& e : std::filesystem::directory_iterator(
           "/proc/" + std::to_string(pid) + "/fd")) {
    const size_t fd = std::stoul(e.path().filename().string());
    if (fd >= used.size()) used.resize(fd + 1);
    used[fd] = true;
  }
  size_t i = 0;
  while (i < used.size() && used[i]) ++i;
  return static_cast<int>(i);
}

// Leaves `pid` 4 free fd numbers (an fd number at or above the soft limit
// cannot be allocated; the ones it has stay open), then uses them up with
// `per_target` connections to each target that never speak. `old` gets the
// limit to restore. Returns the connections; none when prlimit failed.
std::vector<int> ExhaustFds(pid_t pid, const std::vector<std::string>& targets,
                            int per_target, rlimit* old) {
  std::vector<int> hogs;
  if (::prlimit(pid, RLIMIT_NOFILE, nullptr, old) != 0) return hogs;
  rlimit tight = *old;
  tight.rlim_cur = static_cast<rlim_t>(LowestFreeFd(pid) + 4);
  if (::prlimit(pid, RLIMIT_NOFILE, &tight, nullptr) != 0) return hogs;
  for (const std::string& target : targets) {
    for (int i = 0; i < per_target; ++i) {
      const int fd = RawConnect(target);
      if (fd >= 0) hogs.push_back(fd);
    }
  }
  return hogs;
}

// ServerReady over a new connection, within `deadline_ms`.
grpc::Status FreshReady(
    const std::string& target, int deadline_ms,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr) {
  auto stub = inference::GRPCInferenceService::NewStub(
      FreshChannel(target, std::move(credentials)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   milliseconds(deadline_ms));
  inference::ServerReadyRequest req;
  inference::ServerReadyResponse resp;
  grpc::Status s = stub->ServerReady(&ctx, req, &resp);
  if (s.ok() && !resp.ready()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not ready");
  }
  return s;
}

class FdExhaustionTest : public ::testing::TestWithParam<bool> {};

TEST_P(FdExhaustionTest, NotServingWhileOutOfFdsThenRecoversWithinOneSecond) {
  const bool tcp = GetParam();
  std::vector<std::string> args = {"--backend=cpu", "--health_interval=200ms"};
  if (tcp) {
    args.push_back("--listen=127.0.0.1:" + std::to_string(FreeTcpPort()));
  }
  DaemonProcess d(args);
  ASSERT_GT(d.pid(), 0);
  auto stub = d.stub();
  ASSERT_TRUE(WaitForServing(*d.channel(), "mel", true, 10000));
  AttackFigures fig(d.pid(),
                    tcp ? "fd exhaustion (tcp)" : "fd exhaustion (unix)");

  // Leave the daemon a handful of fds, then use them up.
  rlimit old{};
  const std::vector<int> hogs = ExhaustFds(d.pid(), {d.target()}, 24, &old);
  ASSERT_FALSE(hogs.empty());

  // Health, on the connection the test already has, turns NOT_SERVING.
  const milliseconds noticed =
      WaitUntil([&] { return HealthCheck(*d.channel(), "") == "NOT_SERVING"; },
                milliseconds(5000));
  EXPECT_GE(noticed.count(), 0)
      << "health stayed " << HealthCheck(*d.channel(), "") << "\n"
      << d.log();
  EXPECT_EQ(ModelReady(*stub, "mel"), std::optional<bool>(false));
  // A new client is refused promptly (its connection is accepted and closed
  // on the fd reserve), not left to time out.
  const auto t_refused = std::chrono::steady_clock::now();
  const grpc::Status refused = FreshReady(d.target(), 3000);
  const auto refused_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - t_refused);
  EXPECT_FALSE(refused.ok());
  std::printf(
      "[attack] out of fds: NOT_SERVING after %lld ms; a new client "
      "got %d '%s' after %lld ms\n",
      static_cast<long long>(noticed.count()),
      static_cast<int>(refused.error_code()), refused.error_message().c_str(),
      static_cast<long long>(refused_ms.count()));
  fig.Report("during");

  // Give the fds back: a new client is served within 1 s.
  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &old, nullptr), 0);
  const auto freed = std::chrono::steady_clock::now();
  const milliseconds recovered =
      WaitUntil([&] { return FreshReady(d.target(), 300).ok(); },
                milliseconds(5000), milliseconds(5));
  const auto recovered_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - freed);
  std::printf("[attack] fds back: a new client served after %lld ms\n",
              static_cast<long long>(recovered_ms.count()));
  ASSERT_GE(recovered.count(), 0) << d.log();
  EXPECT_LT(recovered_ms.count(), 1000);
  EXPECT_TRUE(WaitForServing(*d.channel(), "mel", true, 2000));
  EXPECT_EQ(HealthCheck(*d.channel(), ""), "SERVING");
  for (int fd : hogs) ::close(fd);
  fig.Report("after");
  EXPECT_NE(d.log().find("cannot accept connections"), std::string::npos);
  EXPECT_EQ(d.Stop(SIGTERM), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, FdExhaustionTest, ::testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "Tcp" : "Unix";
                         });

// The port after `marker` in the daemon's log ("/v2 (port " for REST);
// -1 if it is not there within 5 s.
int PortFromLog(const std::string& log_path, const std::string& marker) {
  for (int i = 0; i < 200; ++i) {
    const std::string log = ReadText(log_path);
    const size_t at = log.find(marker);
    if (at != std::string::npos) {
      return std::atoi(log.c_str() + at + marker.size());
    }
    std::this_thread::sleep_for(milliseconds(25));
  }
  return -1;
}

// The status line of GET `path` on 127.0.0.1:port (each socket operation
// bounded by 1 s); empty when there is none.
std::string HttpStatusLine(int port, const std::string& path) {
  const std::string got = HttpGet(port, path, 1, 256);
  return got.substr(0, got.find("\r\n"));
}

// The REST and metrics listeners (libmicrohttpd) accept on their own
// threads, outside the fd reserve gRPC's listener keeps: the same attack
// with both listening and their ports hogged too. gRPC recovers within
// 1 s as before, and both HTTP endpoints answer again once fds are back.
TEST(FdExhaustionWithHttp, EveryListenerServesAgainOnceFdsAreBack) {
  DaemonProcess d({"--backend=cpu", "--health_interval=200ms",
                   "--metrics=127.0.0.1:0", "--http=127.0.0.1:0"});
  ASSERT_GT(d.pid(), 0);
  ASSERT_TRUE(WaitForServing(*d.channel(), "mel", true, 10000));
  const int metrics = MetricsPortFromLog(d.log_path());
  const int rest = PortFromLog(d.log_path(), "/v2 (port ");
  ASSERT_GT(metrics, 0) << d.log();
  ASSERT_GT(rest, 0) << d.log();
  auto answers200 = [](int port, const std::string& path) {
    return HttpStatusLine(port, path).find(" 200 ") != std::string::npos;
  };
  ASSERT_TRUE(answers200(metrics, "/metrics"));
  ASSERT_TRUE(answers200(rest, "/v2/health/ready"));
  AttackFigures fig(d.pid(), "fd exhaustion with REST and metrics listening");
  // An idle connection on each HTTP port, accepted before the attack: with
  // one open, libmicrohttpd stops accepting at the first accept() that
  // fails (without, it retries), and that idle connection alone would keep
  // it stopped until its idle timeout.
  std::vector<int> idle;
  for (int port : {metrics, rest}) {
    idle.push_back(RawConnect("127.0.0.1:" + std::to_string(port)));
    ASSERT_GE(idle.back(), 0);
  }
  // libmicrohttpd's polling threads accept at once; give them a moment.
  std::this_thread::sleep_for(milliseconds(200));

  rlimit old{};
  const std::vector<int> hogs =
      ExhaustFds(d.pid(),
                 {d.target(), "127.0.0.1:" + std::to_string(metrics),
                  "127.0.0.1:" + std::to_string(rest)},
                 12, &old);
  ASSERT_FALSE(hogs.empty());
  const milliseconds noticed =
      WaitUntil([&] { return HealthCheck(*d.channel(), "") == "NOT_SERVING"; },
                milliseconds(5000));
  EXPECT_GE(noticed.count(), 0)
      << "health stayed " << HealthCheck(*d.channel(), "") << "\n"
      << d.log();
  // Requests on the HTTP ports while out of fds: whatever they get, their
  // accept loops meet EMFILE.
  const std::string during_metrics = HttpStatusLine(metrics, "/metrics");
  const std::string during_rest = HttpStatusLine(rest, "/v2/health/ready");
  std::printf(
      "[attack] out of fds with HTTP listeners: NOT_SERVING after %lld ms; "
      "metrics got '%s', REST got '%s'\n",
      static_cast<long long>(noticed.count()), during_metrics.c_str(),
      during_rest.c_str());
  fig.Report("during");

  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &old, nullptr), 0);
  const auto freed = std::chrono::steady_clock::now();
  const milliseconds grpc_back =
      WaitUntil([&] { return FreshReady(d.target(), 300).ok(); },
                milliseconds(5000), milliseconds(5));
  const auto grpc_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - freed);
  ASSERT_GE(grpc_back.count(), 0) << d.log();
  EXPECT_LT(grpc_ms.count(), 1000);
  const milliseconds metrics_back =
      WaitUntil([&] { return answers200(metrics, "/metrics"); },
                milliseconds(5000), milliseconds(20));
  const milliseconds rest_back =
      WaitUntil([&] { return answers200(rest, "/v2/health/ready"); },
                milliseconds(5000), milliseconds(20));
  const auto all_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - freed);
  std::printf(
      "[attack] fds back: gRPC served after %lld ms, metrics and REST "
      "answering 200 after %lld ms\n",
      static_cast<long long>(grpc_ms.count()),
      static_cast<long long>(all_ms.count()));
  EXPECT_GE(metrics_back.count(), 0) << d.log();
  EXPECT_GE(rest_back.count(), 0) << d.log();
  EXPECT_LT(all_ms.count(), 2000);
  EXPECT_TRUE(WaitForServing(*d.channel(), "mel", true, 2000));
  for (int fd : hogs) ::close(fd);
  for (int fd : idle) ::close(fd);
  // The metrics server has one polling thread, so its idle connection
  // stopped it for certain; REST's pool may have had a thread without one.
  EXPECT_NE(d.log().find("--metrics: accepting had stopped"), std::string::npos)
      << d.log();
  fig.Report("after");
  EXPECT_EQ(d.Stop(SIGTERM), 0);
}

// The same attack on a mutual-TLS port: health (over the TLS connection
// the test already has) turns NOT_SERVING, and once fds are back a new TLS
// client is served within 1 s; gRPC's internal listener never fails an
// accept ("Failed accept4" is gRPC's own log line for it).
TEST(TlsFdExhaustion, NotServingWhileOutOfFdsThenRecoversWithinOneSecond) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << ReadText(certs.path("openssl.log"));
  const std::string target = "127.0.0.1:" + std::to_string(FreeTcpPort());
  std::vector<std::string> args = {"--backend=cpu", "--health_interval=200ms",
                                   "--listen=" + target};
  for (const std::string& f : certs.MutualTlsFlags()) args.push_back(f);
  DaemonProcess d(args, certs.ClientCredentials());
  ASSERT_GT(d.pid(), 0);
  auto stub = d.stub();
  ASSERT_TRUE(WaitForServing(*d.channel(), "mel", true, 10000)) << d.log();
  const long settled_fds = ReadProcFigures(d.pid()).fds;
  // No client certificate: refused, as without the relay.
  EXPECT_FALSE(
      FreshReady(target, 3000,
                 grpc::SslCredentials(grpc::SslCredentialsOptions{
                     .pem_root_certs = ReadText(certs.path("ca.pem"))}))
          .ok());
  ASSERT_TRUE(FreshReady(target, 3000, certs.ClientCredentials()).ok());
  // Those connections close a moment later; fds they free after the limit
  // below is set would be more room than the attack leaves.
  EXPECT_GE(
      WaitUntil([&] { return ReadProcFigures(d.pid()).fds <= settled_fds; },
                milliseconds(3000))
          .count(),
      0);
  AttackFigures fig(d.pid(), "fd exhaustion (mutual TLS, tcp)");

  rlimit old{};
  const std::vector<int> hogs = ExhaustFds(d.pid(), {target}, 24, &old);
  ASSERT_FALSE(hogs.empty());

  const milliseconds noticed =
      WaitUntil([&] { return HealthCheck(*d.channel(), "") == "NOT_SERVING"; },
                milliseconds(5000));
  EXPECT_GE(noticed.count(), 0)
      << "health stayed " << HealthCheck(*d.channel(), "") << "\n"
      << d.log();
  EXPECT_EQ(ModelReady(*stub, "mel"), std::optional<bool>(false));
  const auto t_refused = std::chrono::steady_clock::now();
  const grpc::Status refused =
      FreshReady(target, 3000, certs.ClientCredentials());
  const auto refused_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - t_refused);
  EXPECT_FALSE(refused.ok());
  std::printf(
      "[attack] TLS out of fds: NOT_SERVING after %lld ms; a new TLS client "
      "got %d '%s' after %lld ms\n",
      static_cast<long long>(noticed.count()),
      static_cast<int>(refused.error_code()), refused.error_message().c_str(),
      static_cast<long long>(refused_ms.count()));
  fig.Report("during");

  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &old, nullptr), 0);
  const auto freed = std::chrono::steady_clock::now();
  const milliseconds recovered = WaitUntil(
      [&] { return FreshReady(target, 300, certs.ClientCredentials()).ok(); },
      milliseconds(5000), milliseconds(5));
  const auto recovered_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - freed);
  std::printf("[attack] TLS fds back: a new TLS client served after %lld ms\n",
              static_cast<long long>(recovered_ms.count()));
  ASSERT_GE(recovered.count(), 0) << d.log();
  EXPECT_LT(recovered_ms.count(), 1000);
  EXPECT_TRUE(WaitForServing(*d.channel(), "mel", true, 2000));
  EXPECT_EQ(HealthCheck(*d.channel(), ""), "SERVING");
  for (int fd : hogs) ::close(fd);
  // Each open TLS connection costs 3 fds: the client's, the relay's end of
  // the internal connection and gRPC's end.
  const long idle = ReadProcFigures(d.pid()).fds;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < 10; ++i) {
    channels.push_back(FreshChannel(target, certs.ClientCredentials()));
    EXPECT_TRUE(channels.back()->WaitForConnected(
        std::chrono::system_clock::now() + std::chrono::seconds(5)));
  }
  const long busy = ReadProcFigures(d.pid()).fds;
  std::printf("[attack] TLS: 10 connections cost %ld fds (%ld -> %ld)\n",
              busy - idle, idle, busy);
  EXPECT_LE(busy - idle, 30);
  fig.Report("after");
  const std::string log = d.log();
  EXPECT_NE(log.find("cannot accept connections"), std::string::npos);
  EXPECT_EQ(log.find("Failed accept4"), std::string::npos) << log;
  EXPECT_EQ(d.Stop(SIGTERM), 0);
}

// Every fd boundary: with 0 to 7 fds left, new TLS clients either get
// served or are refused at once, and once the fds are back one is served
// within 1 s. A relay that did not keep gRPC's accept an fd (its headroom
// check, its spare fd and budget) would, at the boundary where the client's
// fd and the relay's end fit but gRPC's accept does not, get gRPC's
// internal listener retired ("Failed accept4"); the relay would then switch
// to its spare listener and log "stopped accepting".
TEST(TlsFdExhaustion, InternalListenerSurvivesEveryFdBoundary) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << ReadText(certs.path("openssl.log"));
  const std::string target = "127.0.0.1:" + std::to_string(FreeTcpPort());
  std::vector<std::string> args = {"--backend=cpu", "--listen=" + target};
  for (const std::string& f : certs.MutualTlsFlags()) args.push_back(f);
  DaemonProcess d(args, certs.ClientCredentials());
  ASSERT_GT(d.pid(), 0);
  rlimit old{};
  ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, nullptr, &old), 0);
  for (int left = 0; left < 8; ++left) {
    rlimit tight = old;
    tight.rlim_cur = static_cast<rlim_t>(LowestFreeFd(d.pid()) + left);
    ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &tight, nullptr), 0);
    int served = 0;
    for (int i = 0; i < 3; ++i) {
      served += FreshReady(target, 2000, certs.ClientCredentials()).ok();
    }
    ASSERT_EQ(::prlimit(d.pid(), RLIMIT_NOFILE, &old, nullptr), 0);
    const milliseconds recovered = WaitUntil(
        [&] { return FreshReady(target, 300, certs.ClientCredentials()).ok(); },
        milliseconds(3000), milliseconds(5));
    std::printf(
        "[attack] TLS with %d fds left: %d of 3 new clients served; served "
        "again %lld ms after the fds came back\n",
        left, served, static_cast<long long>(recovered.count()));
    ASSERT_GE(recovered.count(), 0) << d.log();
    EXPECT_LT(recovered.count(), 1000);
  }
  const std::string log = d.log();
  EXPECT_EQ(log.find("Failed accept4"), std::string::npos) << log;
  EXPECT_EQ(log.find("stopped accepting"), std::string::npos) << log;
  EXPECT_EQ(d.Stop(SIGTERM), 0);
}

// The drain order through the relay: SIGTERM under 16 closed-loop mutual-
// TLS clients. The relayed connections keep flowing until gRPC closes
// them, so every call is answered (right bytes) or UNAVAILABLE, never
// CANCELLED, and the daemon exits in time.
TEST(TlsDrain, SigtermUnderTlsClientsNeverCancelsACall) {
  TestCertificates certs;
  ASSERT_TRUE(certs.ok()) << ReadText(certs.path("openssl.log"));
  const std::string target = "127.0.0.1:" + std::to_string(FreeTcpPort());
  std::vector<std::string> args = {"--backend=cpu", "--drain_timeout=2s",
                                   "--listen=" + target};
  for (const std::string& f : certs.MutualTlsFlags()) args.push_back(f);
  DaemonProcess d(args, certs.ClientCredentials());
  ASSERT_GT(d.pid(), 0);
  std::mt19937 rng(13);
  const Sample sample = PassthroughSample(rng, 1);
  std::atomic<bool> stop{false};
  std::atomic<long> sent{0};
  std::atomic<long> wrong{0};
  absl::Mutex mu;
  std::map<int, long> codes;
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&] {
      auto stub = inference::GRPCInferenceService::NewStub(
          FreshChannel(target, certs.ClientCredentials()));
      std::map<int, long> mine;
      while (!stop.load()) {
        inference::ModelInferResponse resp;
        const grpc::Status s = Infer(*stub, sample.request, &resp, 5000);
        ++sent;
        ++mine[s.error_code()];
        if (s.ok() && (resp.raw_output_contents_size() != 1 ||
                       resp.raw_output_contents(0) != sample.expected)) {
          ++wrong;
        }
      }
      absl::MutexLock lock(&mu);
      for (const auto& [code, n] : mine) codes[code] += n;
    });
  }
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_GT(sent.load(), 0) << "the flood did not start";
  const auto t0 = std::chrono::steady_clock::now();
  const int code = d.Stop(SIGTERM, 10);
  const auto exit_ms = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - t0);
  stop = true;
  for (auto& t : clients) t.join();
  std::printf("[attack] SIGTERM under 16 TLS clients: exit %d after %lld ms;",
              code, static_cast<long long>(exit_ms.count()));
  for (const auto& [c, n] : codes) std::printf(" code %d x%ld", c, n);
  std::printf("\n");
  EXPECT_EQ(code, 0);
  EXPECT_LT(exit_ms.count(), 3000);  // drain_timeout + 1 s
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(codes[grpc::StatusCode::OK], 0);
  for (const auto& [c, n] : codes) {
    if (n == 0) continue;
    EXPECT_TRUE(c == grpc::StatusCode::OK || c == grpc::StatusCode::UNAVAILABLE)
        << "code " << c << " x" << n;
  }
}

TEST(SingleInstance, SecondDaemonOnTheSameSocketExitsWithAClearError) {
  const std::string dir = TempDir();
  const std::string sock = dir + "/npukd.sock";
  const std::vector<std::string> args = {"--backend=cpu",
                                         "--listen=unix:" + sock};
  // Both at the same moment.
  const pid_t a = SpawnNpukd(args, dir + "/a.log");
  const pid_t b = SpawnNpukd(args, dir + "/b.log");
  // The loser exits on its own; the winner keeps serving.
  int code_a = -2;
  int code_b = -2;
  const milliseconds settled = WaitUntil(
      [&] {
        int status = 0;
        if (code_a == -2 && ::waitpid(a, &status, WNOHANG) == a) {
          code_a = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        if (code_b == -2 && ::waitpid(b, &status, WNOHANG) == b) {
          code_b = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        }
        return code_a != -2 || code_b != -2;
      },
      milliseconds(20000));
  ASSERT_GE(settled.count(), 0) << "neither daemon exited";
  const bool a_lost = code_a != -2;
  const pid_t winner = a_lost ? b : a;
  const int loser_code = a_lost ? code_a : code_b;
  const std::string loser_log = ReadText(dir + (a_lost ? "/a.log" : "/b.log"));
  std::printf(
      "[attack] two daemons on one socket: loser exit %d after %lld "
      "ms: %s",
      loser_code, static_cast<long long>(settled.count()), loser_log.c_str());
  EXPECT_NE(loser_code, 0);
  EXPECT_NE(loser_log.find("another npukd"), std::string::npos) << loser_log;
  EXPECT_NE(loser_log.find("npukd.sock.lock"), std::string::npos) << loser_log;
  // The winner serves on the path.
  EXPECT_GE(WaitUntil([&] { return FreshReady("unix:" + sock, 1000).ok(); },
                      milliseconds(20000))
                .count(),
            0)
      << ReadText(dir + (a_lost ? "/b.log" : "/a.log"));
  ::kill(winner, SIGTERM);
  EXPECT_EQ(WaitExit(winner, milliseconds(15000)), 0);
}

TEST(SocketMode, NeverWiderThanItsModeUnderUmaskZero) {
  const std::string dir = TempDir();
  const std::string sock = dir + "/npukd.sock";
  const pid_t pid = SpawnNpukd(
      {"--backend=cpu", "--listen=unix:" + sock, "--socket_mode=0660"},
      dir + "/npukd.log", /*umask_value=*/0);
  // Watch the path from before it exists until the daemon serves.
  mode_t widest = 0;
  int seen = 0;
  const milliseconds up = WaitUntil(
      [&] {
        struct stat st {};
        if (::lstat(sock.c_str(), &st) == 0) {
          widest |= st.st_mode & 0777;
          ++seen;
          return FreshReady("unix:" + sock, 500).ok();
        }
        return false;
      },
      milliseconds(20000), milliseconds(0));
  std::printf("[attack] umask 000: socket modes seen (%d looks): %04o\n", seen,
              static_cast<unsigned>(widest));
  ASSERT_GE(up.count(), 0) << ReadText(dir + "/npukd.log");
  EXPECT_EQ(widest & ~static_cast<mode_t>(0660), 0u);
  struct stat st {};
  ASSERT_EQ(::lstat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ::kill(pid, SIGTERM);
  EXPECT_EQ(WaitExit(pid, milliseconds(15000)), 0);
}

}  // namespace
}  // namespace npuk::testing
