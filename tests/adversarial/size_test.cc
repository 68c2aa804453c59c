// Messages over the size limit (issue 13, item 5): they are refused with
// RESOURCE_EXHAUSTED and the daemon serves on. gRPC 1.51 receives a whole
// message before its size check runs (chttp2 grants HTTP/2 window for the
// length its 5-byte prefix announces; the check is in the message-size
// filter, after the message is complete), so what the daemon can bound is
// the number of copies: each oversized message is held once, never parsed
// or copied, and released with its refusal (docs/RELIABILITY.md, "Message
// sizes").
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/slice.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// A ModelInferRequest for passthrough whose raw_input_contents (field 7)
// is `payload` bytes of one value, as raw bytes over one shared slice: the
// test process holds it once however many calls send it.
grpc::ByteBuffer OversizedRequest(size_t payload) {
  inference::ModelInferRequest head;
  head.set_model_name("passthrough");
  std::string bytes = head.SerializeAsString();
  // Tag of field 7, length-delimited, then the length as a varint.
  bytes.push_back(static_cast<char>((7 << 3) | 2));
  for (uint64_t v = payload;; v >>= 7) {
    if (v < 0x80) {
      bytes.push_back(static_cast<char>(v));
      break;
    }
    bytes.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  grpc_slice big = grpc_slice_malloc(payload);
  std::memset(GRPC_SLICE_START_PTR(big), 0x11, payload);
  grpc::Slice slices[2] = {grpc::Slice(bytes),
                           grpc::Slice(big, grpc::Slice::STEAL_REF)};
  return grpc::ByteBuffer(slices, 2);
}

grpc::Status RawInfer(const std::shared_ptr<grpc::Channel>& channel,
                      const grpc::ByteBuffer& request, bool gzip) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  if (gzip) ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/inference.GRPCInferenceService/ModelInfer",
                 grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

// Sends `calls` concurrent calls of `request`, each on its own connection;
// returns their statuses.
std::vector<grpc::Status> SendConcurrently(DaemonProcess& d,
                                           const grpc::ByteBuffer& request,
                                           int calls, bool gzip) {
  std::vector<grpc::Status> statuses(calls);
  std::vector<std::thread> threads;
  for (int i = 0; i < calls; ++i) {
    threads.emplace_back([&, i] {
      statuses[i] = RawInfer(FreshChannel(d.target()), request, gzip);
    });
  }
  for (auto& t : threads) t.join();
  return statuses;
}

void ExpectServes(DaemonProcess& d) {
  std::mt19937 rng(1);
  const Sample s = PassthroughSample(rng, 2);
  auto stub =
      inference::GRPCInferenceService::NewStub(FreshChannel(d.target()));
  inference::ModelInferResponse resp;
  const grpc::Status st = Infer(*stub, s.request, &resp, 20000);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  EXPECT_EQ(resp.raw_output_contents(0), s.expected);
}

// Peak RSS allowed while `calls` oversized messages of `bytes` each are
// received: one copy of each plus 96 MiB (gRPC's read buffers, the heap).
long OneCopyBoundKb(const ProcFigures& before, int calls, size_t bytes) {
  return before.rss_kb + static_cast<long>(calls * bytes / 1024) + 96 * 1024;
}

// Two 512 MiB calls against the default 64 MiB limit.
TEST(MessageSize, OversizedCallsAreRefusedHoldingOneCopyEach) {
  DaemonProcess d({"--backend=cpu"});
  const grpc::ByteBuffer request = OversizedRequest(512 * kMiB);
  AttackFigures fig(d.pid(), "two concurrent 512 MiB ModelInfer calls");
  const auto statuses = SendConcurrently(d, request, 2, /*gzip=*/false);
  const ProcFigures after = fig.Report();
  for (const grpc::Status& st : statuses) {
    std::printf("[attack] status %d '%s'\n", st.error_code(),
                st.error_message().c_str());
    EXPECT_EQ(st.error_code(), grpc::RESOURCE_EXHAUSTED);
  }
  EXPECT_LT(after.peak_rss_kb, OneCopyBoundKb(fig.before(), 2, 512 * kMiB))
      << FormatFigures(after);
  ExpectServes(d);
}

// 256 MiB of one byte value is ~256 KiB gzip-compressed: small on the wire,
// 256 MiB once decompressed. Compressed requests are refused by default
// (config.proto accept_compressed_requests), before their message is read:
// memory stays flat.
TEST(MessageSize, GzipBombIsRefused) {
  DaemonProcess d({"--backend=cpu"});
  const grpc::ByteBuffer request = OversizedRequest(256 * kMiB);
  AttackFigures fig(d.pid(), "two concurrent gzip calls of 256 MiB each");
  const auto statuses = SendConcurrently(d, request, 2, /*gzip=*/true);
  const ProcFigures after = fig.Report();
  for (const grpc::Status& st : statuses) {
    std::printf("[attack] status %d '%s'\n", st.error_code(),
                st.error_message().c_str());
    EXPECT_EQ(st.error_code(), grpc::UNIMPLEMENTED);
    EXPECT_THAT(st.error_message(), ::testing::HasSubstr("gzip"));
  }
  // Not one decompressed copy: the client's own 256 KiB and gRPC's buffers.
  EXPECT_LT(after.peak_rss_kb, fig.before().rss_kb + 64 * 1024)
      << FormatFigures(after);
  ExpectServes(d);
}

// The switch for trusted clients: with accept_compressed_requests a gzip
// request is served, byte-exact.
TEST(MessageSize, CompressedRequestsAreServedWhenTheConfigAcceptsThem) {
  const std::string config = TempDir() + "/npukd.conf";
  std::ofstream(config) << "accept_compressed_requests: true\n";
  DaemonProcess d({"--backend=cpu", "--config=" + config});
  std::mt19937 rng(5);
  const Sample s = MelSample(rng, 4);
  grpc::ByteBuffer request;
  bool own = false;
  ASSERT_TRUE(
      grpc::SerializationTraits<inference::ModelInferRequest>::Serialize(
          s.request, &request, &own)
          .ok());
  grpc::GenericStub stub(FreshChannel(d.target()));
  grpc::ClientContext ctx;
  ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::ByteBuffer bytes;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/inference.GRPCInferenceService/ModelInfer",
                 grpc::StubOptions(), &request, &bytes,
                 [&done](grpc::Status st) { done.set_value(std::move(st)); });
  const grpc::Status st = done.get_future().get();
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  inference::ModelInferResponse resp;
  ASSERT_TRUE(
      grpc::SerializationTraits<inference::ModelInferResponse>::Deserialize(
          &bytes, &resp)
          .ok());
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0), s.expected);
}

}  // namespace
}  // namespace npuk::testing
