// Attacks the daemon already held when issue 13 was filed, kept as
// regression tests with their RSS and fd cost: HTTP/2 control-frame floods,
// 2000 abandoned streams, 500 connections, clients that vanish mid-call,
// 1 us deadlines. After each attack a new client is served, and the
// daemon's fds return to (about) where they were.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using std::chrono::milliseconds;

int RawUnixConnect(const std::string& target) {
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

// One HTTP/2 frame: 9-byte header and payload.
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream,
                  const std::string& payload) {
  std::string f;
  const uint32_t n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift : {24, 16, 8, 0}) {
    f.push_back(static_cast<char>((stream >> shift) & 0x7f));
  }
  return f + payload;
}

class HeldTest : public ::testing::Test {
 protected:
  HeldTest() : d_({"--backend=cpu"}) {}

  // A new client gets a right answer.
  void ExpectServed() {
    auto stub =
        inference::GRPCInferenceService::NewStub(FreshChannel(d_.target()));
    std::mt19937 rng(1);
    const Sample s = PassthroughSample(rng, 1);
    inference::ModelInferResponse resp;
    const grpc::Status st = Infer(*stub, s.request, &resp, 10000);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << d_.log();
    ASSERT_EQ(resp.raw_output_contents_size(), 1);
    EXPECT_EQ(resp.raw_output_contents(0), s.expected);
  }

  // fds settle back to within `slack` of `before` (connections close
  // asynchronously).
  void ExpectFdsBack(const ProcFigures& before, long slack) {
    const milliseconds t = WaitUntil(
        [&] { return ReadProcFigures(d_.pid()).fds <= before.fds + slack; },
        milliseconds(5000), milliseconds(20));
    EXPECT_GE(t.count(), 0)
        << "fds: " << before.fds << " -> " << ReadProcFigures(d_.pid()).fds;
  }

  DaemonProcess d_;
};

TEST_F(HeldTest, Http2PingAndSettingsFloodOnRawConnections) {
  ExpectServed();
  AttackFigures fig(d_.pid(), "HTTP/2 PING+SETTINGS flood, 8 x 4000 frames");
  std::string burst = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  burst += Frame(0x4, 0, 0, "");  // SETTINGS
  for (int i = 0; i < 2000; ++i) {
    burst += Frame(0x6, 0, 0, std::string(8, static_cast<char>(i)));  // PING
    burst += Frame(0x4, 0, 0, std::string("\x00\x03\x00\x00\x00\x64", 6));
  }
  std::vector<int> fds;
  for (int c = 0; c < 8; ++c) {
    const int fd = RawUnixConnect(d_.target());
    ASSERT_GE(fd, 0);
    // Never read: the ACKs pile up in the daemon's direction.
    const timeval tv{0, 200000};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t off = 0;
    while (off < burst.size()) {
      const ssize_t n =
          ::send(fd, burst.data() + off, burst.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;  // the daemon stopped reading or closed: fine
      off += static_cast<size_t>(n);
    }
    fds.push_back(fd);
  }
  ExpectServed();
  fig.Report("during");
  for (int fd : fds) ::close(fd);
  ExpectFdsBack(fig.before(), 2);
  const ProcFigures after = fig.Report("after");
  EXPECT_LT(after.rss_kb, fig.before().rss_kb + 64 * 1024);
}

TEST_F(HeldTest, TwoThousandAbandonedStreams) {
  ExpectServed();
  AttackFigures fig(d_.pid(), "2000 abandoned ModelStreamInfer streams");
  {
    auto channel = FreshChannel(d_.target());
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    grpc::CompletionQueue cq;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientAsyncReaderWriter<
        inference::ModelInferRequest, inference::ModelStreamInferResponse>>>
        streams;
    for (int i = 0; i < 2000; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      streams.push_back(
          stub->AsyncModelStreamInfer(contexts.back().get(), &cq, nullptr));
    }
    // Let the streams reach the daemon, then walk away: contexts die
    // without a WritesDone or Finish (the client library cancels them).
    void* tag = nullptr;
    bool ok = false;
    for (int i = 0; i < 2000; ++i) {
      if (cq.AsyncNext(&tag, &ok,
                       std::chrono::system_clock::now() + milliseconds(5000)) !=
          grpc::CompletionQueue::GOT_EVENT) {
        break;
      }
    }
    fig.Report("open");
    for (auto& c : contexts) c->TryCancel();
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  ExpectServed();
  ExpectFdsBack(fig.before(), 2);
  const ProcFigures after = fig.Report("after");
  EXPECT_LT(after.rss_kb, fig.before().rss_kb + 64 * 1024);
}

TEST_F(HeldTest, FiveHundredConnections) {
  ExpectServed();
  AttackFigures fig(d_.pid(), "500 gRPC connections, one call each");
  {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    std::vector<std::unique_ptr<InferStub>> stubs;
    for (int i = 0; i < 500; ++i) {
      channels.push_back(FreshChannel(d_.target()));
      stubs.push_back(
          inference::GRPCInferenceService::NewStub(channels.back()));
    }
    int ok = 0;
    for (auto& stub : stubs) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + milliseconds(5000));
      inference::ServerLiveRequest req;
      inference::ServerLiveResponse resp;
      ok += stub->ServerLive(&ctx, req, &resp).ok() ? 1 : 0;
    }
    EXPECT_EQ(ok, 500);
    fig.Report("open");
  }
  ExpectServed();
  ExpectFdsBack(fig.before(), 2);
  fig.Report("after");
}

TEST_F(HeldTest, ClientsThatVanishMidCall) {
  ExpectServed();
  AttackFigures fig(d_.pid(), "200 clients vanish mid-request");
  std::mt19937 rng(2);
  const Sample s = PassthroughSample(rng, 4);
  std::string body;
  ASSERT_TRUE(s.request.SerializeToString(&body));
  // A gRPC request cut off mid-message, then the socket closes (what a
  // killed client leaves behind).
  std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  preface += Frame(0x4, 0, 0, "");
  for (int i = 0; i < 200; ++i) {
    const int fd = RawUnixConnect(d_.target());
    ASSERT_GE(fd, 0);
    const std::string half = preface + body.substr(0, body.size() / 2);
    [[maybe_unused]] ssize_t n =
        ::send(fd, half.data(), half.size(), MSG_NOSIGNAL);
    ::close(fd);
  }
  ExpectServed();
  ExpectFdsBack(fig.before(), 2);
  fig.Report("after");
}

TEST_F(HeldTest, OneMicrosecondDeadlines) {
  ExpectServed();
  AttackFigures fig(d_.pid(), "2000 calls with 1 us deadlines");
  auto stub =
      inference::GRPCInferenceService::NewStub(FreshChannel(d_.target()));
  std::mt19937 rng(3);
  const Sample s = PassthroughSample(rng, 1);
  int wrong = 0;
  for (int i = 0; i < 2000; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::microseconds(1));
    inference::ModelInferResponse resp;
    const grpc::Status st = stub->ModelInfer(&ctx, s.request, &resp);
    if (st.ok() && (resp.raw_output_contents_size() != 1 ||
                    resp.raw_output_contents(0) != s.expected)) {
      ++wrong;
    }
    if (!st.ok() && st.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0);
  ExpectServed();
  const inference::ModelStatistics stats = Stats(*stub, "passthrough");
  std::printf("[attack] 1 us deadlines: passthrough inference_count %lld\n",
              static_cast<long long>(stats.inference_count()));
  fig.Report("after");
}

}  // namespace
}  // namespace npuk::testing
