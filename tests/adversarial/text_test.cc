// Error texts under hostile input (issue 13, item 8): an unparseable
// ModelInfer body gets INVALID_ARGUMENT saying so; client input is quoted
// only as a bounded prefix (server/common/quote.h), so that a 10 kB model
// name still gets its NOT_FOUND (the status fits in the metadata) and a
// 40 MiB one neither kills a stream nor the daemon.
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using ::testing::HasSubstr;

// Longest status text the daemon may answer a hostile request with: 64
// quoted bytes, escaped at most 4x, plus the fixed text.
constexpr size_t kMaxErrorText = 1024;

grpc::Status RawUnaryInfer(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/inference.GRPCInferenceService/ModelInfer",
                 grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST(ErrorText, UnparseableModelInferIsInvalidArgument) {
  DaemonProcess d({"--backend=cpu"});
  AttackFigures fig(d.pid(), "unparseable ModelInfer bodies");
  for (const std::string& body :
       {std::string("\x0a\xff\xff\xff\x0f garbage", 13), std::string("\xff"),
        std::string(1000, '\x07')}) {
    const grpc::Status st = RawUnaryInfer(d.channel(), body);
    std::printf("[attack] %zu-byte body: %d '%s'\n", body.size(),
                st.error_code(), st.error_message().c_str());
    EXPECT_EQ(st.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(st.error_message(),
                HasSubstr("is not a valid inference.ModelInferRequest"));
  }
  // An empty body is a valid (empty) message: the model name is missing.
  const grpc::Status empty = RawUnaryInfer(d.channel(), "");
  EXPECT_EQ(empty.error_code(), grpc::NOT_FOUND) << empty.error_message();
  fig.Report();
}

struct Field {
  const char* what;
  std::function<void(inference::ModelInferRequest&, const std::string&)> set;
  grpc::StatusCode code;
};

std::vector<Field> Fields() {
  return {
      {"model name", [](auto& r, const auto& v) { r.set_model_name(v); },
       grpc::NOT_FOUND},
      {"model version", [](auto& r, const auto& v) { r.set_model_version(v); },
       grpc::NOT_FOUND},
      {"tensor name",
       [](auto& r, const auto& v) { r.mutable_inputs(0)->set_name(v); },
       grpc::INVALID_ARGUMENT},
      {"datatype",
       [](auto& r, const auto& v) { r.mutable_inputs(0)->set_datatype(v); },
       grpc::INVALID_ARGUMENT},
      {"parameter name",
       [](auto& r, const auto& v) {
         (*r.mutable_parameters())[v].set_int64_param(1);
       },
       grpc::INVALID_ARGUMENT},
      {"output name",
       [](auto& r, const auto& v) { r.add_outputs()->set_name(v); },
       grpc::INVALID_ARGUMENT},
  };
}

TEST(ErrorText, LongClientInputIsQuotedBounded) {
  DaemonProcess d({"--backend=cpu"});
  AttackFigures fig(d.pid(), "10 kB and 40 MiB names in every field");
  std::mt19937 rng(5);
  const Sample good = PassthroughSample(rng, 1);
  auto stub = d.stub();
  for (const size_t size : {size_t{10} << 10, size_t{40} << 20}) {
    // Non-printable bytes too: they come back escaped.
    std::string value(size, 'n');
    value[1] = '\x01';
    value[2] = '\'';
    for (const Field& f : Fields()) {
      inference::ModelInferRequest r = good.request;
      f.set(r, value);
      inference::ModelInferResponse resp;
      const grpc::Status st = Infer(*stub, r, &resp);
      std::printf("[attack] %zu-byte %s: %d, %zu-byte text\n", size, f.what,
                  st.error_code(), st.error_message().size());
      EXPECT_EQ(st.error_code(), f.code)
          << f.what << ": " << st.error_message().substr(0, 300);
      EXPECT_LT(st.error_message().size(), kMaxErrorText) << f.what;
      EXPECT_THAT(st.error_message(),
                  HasSubstr("... (" + std::to_string(size) + " bytes)"))
          << f.what;
      EXPECT_THAT(st.error_message(), HasSubstr("'n\\x01\\'nnn")) << f.what;
    }
  }
  fig.Report();
}

// On a stream the answer carries the error; the stream goes on.
TEST(ErrorText, LongModelNameDoesNotEndTheStream) {
  DaemonProcess d({"--backend=cpu"});
  AttackFigures fig(d.pid(), "40 MiB model name inside a stream");
  std::mt19937 rng(9);
  const Sample good = PassthroughSample(rng, 1);
  inference::ModelInferRequest bad = good.request;
  bad.set_model_name(std::string(size_t{40} << 20, 'm'));
  bad.set_id("bad");
  auto stub = d.stub();
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(bad));
  ASSERT_TRUE(stream->Write(good.request));
  stream->WritesDone();
  inference::ModelStreamInferResponse r;
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.infer_response().id(), "bad");
  EXPECT_THAT(r.error_message(), HasSubstr("unknown model 'mmmm"));
  EXPECT_LT(r.error_message().size(), kMaxErrorText);
  EXPECT_LT(r.ByteSizeLong(), kMaxErrorText * 2);
  ASSERT_TRUE(stream->Read(&r));
  EXPECT_EQ(r.error_message(), "");
  EXPECT_EQ(r.infer_response().raw_output_contents(0), good.expected);
  EXPECT_FALSE(stream->Read(&r));
  const grpc::Status st = stream->Finish();
  EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  fig.Report();
}

}  // namespace
}  // namespace npuk::testing
