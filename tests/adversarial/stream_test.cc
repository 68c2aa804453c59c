// ModelStreamInfer under hostile clients (issue 13, items 2 and 3):
// - clients that write and never read: the daemon's memory stays bounded
//   (per-stream and per-process bytes in flight, docs/RELIABILITY.md);
//   compressed requests are refused by default (size_test);
// - a client that reads late still gets every answer, in full;
// - a corrupt message inside a stream ends it with INVALID_ARGUMENT naming
//   the request's index, after the answers to the requests before it.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using ::testing::HasSubstr;

constexpr const char* kStreamMethod =
    "/inference.GRPCInferenceService/ModelStreamInfer";

// The documented bound for 64 never-reading streams (docs/RELIABILITY.md).
constexpr long kRssBoundKb = 256 * 1024;

// Passthrough, `blocks` blocks of 4 KiB in and out, no compute (the answer
// as large as the request: the worst case of every model). A constant
// pattern so that gzip shrinks it to ~1 KiB per 256 KiB on the wire.
inference::ModelInferRequest BigRequest(int blocks) {
  return PassthroughRequest(std::vector<int8_t>(blocks * 4096, 0x11));
}

struct Flood {
  int streams = 64;
  int max_writes = 40;  // per stream; 64 x 40 x 2 requests if nothing held
  int blocks = 64;      // 256 KiB requests
  bool gzip = false;
};

// `streams` streams write up to `max_writes` requests each and never read.
// Returns once no write has completed for 1.5 s (every stream is held back)
// or after 30 s, with the daemon's figures at that point; then cancels.
ProcFigures FloodNeverReading(DaemonProcess& d, const Flood& f,
                              int* writes_done) {
  const inference::ModelInferRequest request = BigRequest(f.blocks);
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  std::vector<std::thread> threads;
  std::atomic<int> writes{0};
  // Each stream on its own connection, like separate clients. The clients
  // never read, not even in their transport: no BDP probing, so their
  // HTTP/2 receive window stays at 64 KiB and the daemon's answers stay in
  // the daemon.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < f.streams; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt("grpc.npuk_test_connection", i);  // never shared
    channels.push_back(grpc::CreateCustomChannel(
        d.target(), grpc::InsecureChannelCredentials(), args));
    ctxs.push_back(std::make_unique<grpc::ClientContext>());
    if (f.gzip) ctxs.back()->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  }
  for (int i = 0; i < f.streams; ++i) {
    threads.emplace_back([&, i] {
      auto stub = inference::GRPCInferenceService::NewStub(channels[i]);
      auto stream = stub->ModelStreamInfer(ctxs[i].get());
      for (int w = 0; w < f.max_writes; ++w) {
        if (!stream->Write(request)) return;
        writes.fetch_add(1);
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  int last = -1;
  auto last_change = start;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const int now = writes.load();
    if (now != last) {
      last = now;
      last_change = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_change >
               std::chrono::milliseconds(1500)) {
      break;
    }
  }
  const ProcFigures during = ReadProcFigures(d.pid());
  *writes_done = writes.load();
  for (auto& c : ctxs) c->TryCancel();
  for (auto& t : threads) t.join();
  return during;
}

// A plain request answered correctly, on a fresh connection.
void ExpectServes(DaemonProcess& d) {
  std::mt19937 rng(7);
  const Sample s = PassthroughSample(rng, 4);
  auto stub =
      inference::GRPCInferenceService::NewStub(FreshChannel(d.target()));
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(*stub, s.request, &resp, 20000);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0), s.expected);
}

struct NeverReadingCase {
  int blocks;  // of 4 KiB per request
  bool gzip;
};

class NeverReading : public ::testing::TestWithParam<NeverReadingCase> {};

// The bound holds for large requests too: a request read while the bounds
// are reached is parked as received (one per stream), not parsed and
// answered (stream_reactor.h).
TEST_P(NeverReading, MemoryStaysBounded) {
  const NeverReadingCase c = GetParam();
  // Passthrough takes at most 256 blocks (1 MiB) by default.
  DaemonProcess d({"--backend=cpu", "--max_batch_frames=passthrough:1024"});
  AttackFigures fig(d.pid(), "64 streams that never read, " +
                                 std::to_string(c.blocks * 4) +
                                 " KiB requests" + (c.gzip ? ", gzip" : ""));
  Flood f;
  f.gzip = c.gzip;
  f.blocks = c.blocks;
  int writes = 0;
  const ProcFigures during = FloodNeverReading(d, f, &writes);
  std::printf(
      "[attack] %d of %d writes went through before the daemon held "
      "the clients back; during: %s\n",
      writes, f.streams * f.max_writes, FormatFigures(during).c_str());
  const ProcFigures after = fig.Report();
  EXPECT_LT(during.peak_rss_kb, kRssBoundKb) << FormatFigures(during);
  EXPECT_LT(after.peak_rss_kb, kRssBoundKb);
  // Held back: far from every write went through. (Compressed, 40 of
  // them fit the 64 KiB HTTP/2 window: they wait there, ~1 KiB each.)
  if (!c.gzip) {
    EXPECT_LT(writes, f.streams * f.max_writes / 2);
  }
  ExpectServes(d);
}

INSTANTIATE_TEST_SUITE_P(Sizes, NeverReading,
                         // No gzip case: compressed requests are refused
                         // by default (size_test's GzipBombIsRefused).
                         ::testing::Values(NeverReadingCase{64, false},
                                           NeverReadingCase{256, false},
                                           NeverReadingCase{512, false}),
                         [](const auto& info) {
                           return std::to_string(info.param.blocks * 4) +
                                  "KiB" + (info.param.gzip ? "_gzip" : "");
                         });

// Flow control only delays: a client that writes 30 requests before it
// reads gets all 30 answers, each correct, in full.
TEST(StreamFlow, LateReaderGetsEveryAnswer) {
  DaemonProcess d({"--backend=cpu"});
  AttackFigures fig(d.pid(), "stream reading only after 30 writes");
  constexpr int kRequests = 30;
  std::mt19937 rng(11);
  std::vector<Sample> samples;
  for (int i = 0; i < kRequests; ++i) {
    samples.push_back(PassthroughSample(rng, 256));
    samples.back().request.set_id("r" + std::to_string(i));
  }
  auto stub = d.stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ModelStreamInfer(&ctx);
  std::thread writer([&] {
    for (const Sample& s : samples) ASSERT_TRUE(stream->Write(s.request));
    stream->WritesDone();
  });
  // Let the writer run into the bound before anything is read.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::vector<bool> seen(kRequests, false);
  inference::ModelStreamInferResponse r;
  int answers = 0;
  while (stream->Read(&r)) {
    ++answers;
    ASSERT_EQ(r.error_message(), "");
    const std::string& id = r.infer_response().id();
    const int i = std::stoi(id.substr(1));
    ASSERT_FALSE(seen[i]) << "answered twice: " << id;
    seen[i] = true;
    ASSERT_EQ(r.infer_response().raw_output_contents(0), samples[i].expected);
  }
  writer.join();
  const grpc::Status st = stream->Finish();
  EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  EXPECT_EQ(answers, kRequests);
  fig.Report();
}

// Raw bytes over the generic API, so that a message can be corrupt.
class RawStream {
 public:
  RawStream(const std::shared_ptr<grpc::Channel>& channel) : stub_(channel) {
    ctx_.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    call_ = stub_.PrepareCall(&ctx_, kStreamMethod, &cq_);
    call_->StartCall(Tag(1));
    EXPECT_TRUE(Next(1));
  }
  ~RawStream() {
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  bool Write(const std::string& bytes) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    call_->Write(buffer, Tag(2));
    return Next(2);
  }
  void WritesDone() {
    call_->WritesDone(Tag(3));
    Next(3);
  }
  // Reads answers until the stream ends; returns them.
  std::vector<inference::ModelStreamInferResponse> ReadAll() {
    std::vector<inference::ModelStreamInferResponse> out;
    while (true) {
      grpc::ByteBuffer buffer;
      call_->Read(&buffer, Tag(4));
      if (!Next(4)) break;
      std::vector<grpc::Slice> slices;
      EXPECT_TRUE(buffer.Dump(&slices).ok());
      std::string bytes;
      for (const auto& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      out.emplace_back();
      EXPECT_TRUE(out.back().ParseFromString(bytes));
    }
    return out;
  }
  grpc::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, Tag(5));
    Next(5);
    return status;
  }

 private:
  static void* Tag(intptr_t t) { return reinterpret_cast<void*>(t); }
  bool Next(intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq_.Next(&tag, &ok));
    EXPECT_EQ(tag, Tag(want));
    return ok;
  }

  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
};

TEST(StreamCorrupt, EndsWithInvalidArgumentNamingTheRequest) {
  DaemonProcess d({"--backend=cpu"});
  AttackFigures fig(d.pid(), "stream [good, corrupt bytes, good]");
  std::mt19937 rng(3);
  Sample good = PassthroughSample(rng, 2);
  good.request.set_id("first");
  Sample later = PassthroughSample(rng, 2);
  later.request.set_id("third");
  // 0x0a announces field 1 (model_name) as length-delimited, then a length
  // far past the end of the message: no parser accepts it.
  const std::string corrupt("\x0a\xff\xff\xff\x0f garbage", 13);
  {
    RawStream s(d.channel());
    ASSERT_TRUE(s.Write(good.request.SerializeAsString()));
    // The daemon may end the stream as soon as it read the corrupt message.
    s.Write(corrupt);
    s.Write(later.request.SerializeAsString());
    s.WritesDone();
    const auto answers = s.ReadAll();
    const grpc::Status st = s.Finish();
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0].error_message(), "");
    EXPECT_EQ(answers[0].infer_response().id(), "first");
    EXPECT_EQ(answers[0].infer_response().raw_output_contents(0),
              good.expected);
    EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("request #1 "));
    EXPECT_THAT(st.error_message(), HasSubstr("not a valid"));
    std::printf("[attack] status: %d '%s'\n", st.error_code(),
                st.error_message().c_str());
  }
  // A corrupt first message: nothing answered, index 0.
  {
    RawStream s(d.channel());
    s.Write(corrupt);
    s.WritesDone();
    EXPECT_TRUE(s.ReadAll().empty());
    const grpc::Status st = s.Finish();
    EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(), HasSubstr("request #0 "));
  }
  // Only good messages: OK, as before.
  {
    RawStream s(d.channel());
    ASSERT_TRUE(s.Write(good.request.SerializeAsString()));
    ASSERT_TRUE(s.Write(later.request.SerializeAsString()));
    s.WritesDone();
    EXPECT_EQ(s.ReadAll().size(), 2u);
    const grpc::Status st = s.Finish();
    EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  }
  fig.Report();
  ExpectServes(d);
}

}  // namespace
}  // namespace npuk::testing
