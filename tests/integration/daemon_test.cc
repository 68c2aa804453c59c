// The real daemon, end to end over a unix socket: correctness under
// concurrency, batching, validation, streaming, deadlines and drain. Runs
// once per backend built (cpu, npu-sim).
#include <signal.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using npuk::testing::DaemonProcess;
using ::testing::HasSubstr;

using npuk::testing::AttentionReference;
using npuk::testing::AttentionRequest;
using npuk::testing::Backends;
using npuk::testing::Infer;
using npuk::testing::MelReference;
using npuk::testing::MelRequest;
using npuk::testing::PassthroughRequest;
using npuk::testing::RandomAudio;
using npuk::testing::RandomInt8;
using npuk::testing::Stats;

class DaemonTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    extra.push_back("--backend=" + GetParam());
    return extra;
  }
};

TEST_P(DaemonTest, SixtyFourConcurrentClientsEachGetTheReferenceOfTheirInput) {
  DaemonProcess d(Args());
  constexpr int kClients = 64;
  constexpr int kRequestsEach = 6;
  std::atomic<int> ok{0}, wrong{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(1000 + c);
      auto stub = d.stub();
      for (int i = 0; i < kRequestsEach; ++i) {
        ModelInferResponse resp;
        std::string expected;
        grpc::Status s;
        if ((c + i) % 3 != 0) {
          const size_t frames = 1 + rng() % (c % 4 == 0 ? 120 : 8);
          auto audio = RandomAudio(rng, frames);
          s = Infer(*stub, MelRequest(audio), &resp);
          expected = MelReference(audio);
        } else {
          const size_t tiles = 1 + rng() % 3;
          const double sigma = 1 + (rng() % 200) / 100.0;
          auto q = RandomInt8(rng, tiles * 4096, 20 * sigma);
          auto k = RandomInt8(rng, tiles * 4096, 20 * sigma);
          auto v = RandomInt8(rng, tiles * 4096, 30 * sigma);
          const double scale =
              std::ldexp(1.0, -(static_cast<int>(rng() % 12) + 4));
          s = Infer(*stub, AttentionRequest(q, k, v, scale), &resp);
          expected = AttentionReference(q, k, v, scale);
        }
        if (!s.ok()) {
          ++failed;
          ADD_FAILURE() << s.error_message();
        } else if (resp.raw_output_contents_size() != 1 ||
                   resp.raw_output_contents(0) != expected) {
          ++wrong;
        } else {
          ++ok;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRequestsEach);
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

TEST_P(DaemonTest, ConcurrentSingleFrameClientsAreBatched) {
  DaemonProcess d(Args());
  constexpr int kClients = 64;
  constexpr int kRequestsEach = 20;
  std::vector<std::thread> clients;
  std::atomic<int> failed{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c);
      auto stub = d.stub();
      for (int i = 0; i < kRequestsEach; ++i) {
        ModelInferResponse resp;
        auto audio = RandomAudio(rng, 1);
        if (!Infer(*stub, MelRequest(audio), &resp).ok() ||
            resp.raw_output_contents(0) != MelReference(audio)) {
          ++failed;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  auto stub = d.stub();
  const inference::ModelStatistics s = Stats(*stub, "mel");
  EXPECT_EQ(s.inference_count(),
            static_cast<uint64_t>(kClients * kRequestsEach));
  std::cout << "[ batching ] " << s.inference_count() << " frames in "
            << s.execution_count() << " device runs (mean batch "
            << static_cast<double>(s.inference_count()) /
                   std::max<uint64_t>(1, s.execution_count())
            << ")\n";
  EXPECT_LT(s.execution_count() * 2, s.inference_count())
      << "64 concurrent 1-frame clients should share device runs";
  uint64_t batched_frames = 0;
  for (const auto& b : s.batch_stats()) {
    batched_frames += b.batch_size() * b.compute_infer().count();
  }
  EXPECT_EQ(batched_frames, s.inference_count());
}

TEST_P(DaemonTest, ResponsesCarryTimingMetadata) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  std::mt19937 rng(1);
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(*stub, MelRequest(RandomAudio(rng, 3)), &resp).ok());
  const auto& p = resp.parameters();
  for (const char* key :
       {"queue_us", "compute_us", "server_us", "batch_frames"}) {
    ASSERT_TRUE(p.contains(key)) << key;
    EXPECT_GE(p.at(key).int64_param(), 0) << key;
  }
  EXPECT_GE(p.at("batch_frames").int64_param(), 3);
  EXPECT_GE(p.at("server_us").int64_param(), p.at("compute_us").int64_param());
  EXPECT_EQ(p.at("backend").string_param(), GetParam());
  EXPECT_EQ(resp.model_name(), "mel");
  EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(3, 80));
}

TEST_P(DaemonTest, MetadataConfigAndIndexDescribeTheModels) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest req;
    req.set_name("mel");
    inference::ModelMetadataResponse resp;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.inputs_size(), 1);
    EXPECT_EQ(resp.inputs(0).name(), "audio");
    EXPECT_EQ(resp.inputs(0).datatype(), "INT16");
    EXPECT_THAT(resp.inputs(0).shape(), ::testing::ElementsAre(-1, 400));
    EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(-1, 80));
  }
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest req;
    req.set_name("attention");
    inference::ModelMetadataResponse resp;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.inputs_size(), 3);
    // The attention model: [N, Lk, 64] (docs/ATTENTION.md).
    EXPECT_THAT(resp.inputs(2).shape(), ::testing::ElementsAre(-1, -1, 64));
  }
  {
    grpc::ClientContext ctx;
    inference::ModelConfigRequest req;
    req.set_name("attention");
    inference::ModelConfigResponse resp;
    ASSERT_TRUE(stub->ModelConfig(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.config().max_batch_size(), 0);  // N is explicit
    EXPECT_EQ(resp.config().input(0).data_type(), inference::TYPE_INT8);
    ASSERT_TRUE(resp.config().parameters().contains("score_scale"));
    EXPECT_THAT(resp.config().parameters().at("score_scale").string_value(),
                HasSubstr("request parameter (double), default 0.125"));
  }
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse resp;
    ASSERT_TRUE(
        stub->RepositoryIndex(&ctx, inference::RepositoryIndexRequest(), &resp)
            .ok());
    // Every registered kernel is served, in registry order, except the
    // internal ones, which log_mel (served last) and attention run on, and
    // on the NPU backends the opt-in ones (KernelSpec::npu_opt_in).
    std::vector<std::string> want;
    for (const KernelSpec* k : AllKernels()) {
      if (k->internal || (k->npu_opt_in && GetParam() != "cpu")) continue;
      want.push_back(k->name);
    }
    want.push_back("log_mel");
    ASSERT_EQ(static_cast<size_t>(resp.models_size()), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(resp.models(static_cast<int>(i)).name(), want[i]);
    }
    EXPECT_EQ(resp.models(0).name(), "mel");
    EXPECT_EQ(resp.models(1).name(), "attention");
    EXPECT_EQ(resp.models(2).name(), "passthrough");
    for (const auto& m : resp.models()) EXPECT_EQ(m.state(), "READY");
  }
  {
    grpc::ClientContext ctx;
    inference::ServerReadyResponse resp;
    ASSERT_TRUE(
        stub->ServerReady(&ctx, inference::ServerReadyRequest(), &resp).ok());
    EXPECT_TRUE(resp.ready());
  }
}

TEST_P(DaemonTest, PassthroughIsServedByteForByteWithItsOwnCanary) {
  DaemonProcess d(Args());
  // SERVING only once its start-up canary passed (health/ and rpc agree).
  ASSERT_TRUE(
      npuk::testing::WaitForServing(*d.channel(), "passthrough", true, 10000))
      << d.log();
  EXPECT_THAT(d.log(), HasSubstr("passthrough SERVING (canary passed)"));
  auto stub = d.stub();
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest req;
    req.set_name("passthrough");
    inference::ModelMetadataResponse resp;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.inputs_size(), 1);
    EXPECT_EQ(resp.inputs(0).name(), "in");
    EXPECT_EQ(resp.inputs(0).datatype(), "INT8");
    EXPECT_THAT(resp.inputs(0).shape(), ::testing::ElementsAre(-1, 4096));
    EXPECT_EQ(resp.outputs(0).name(), "out");
    EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(-1, 4096));
  }
  std::mt19937 rng(7);
  size_t blocks_sent = 0;
  for (size_t blocks : {1, 3, 17}) {
    // Every byte value, including zero blocks, must come back unchanged.
    std::vector<int8_t> in = RandomInt8(rng, blocks * 4096, 60);
    std::fill_n(in.begin(), 4096 / 2, 0);
    ModelInferRequest r = PassthroughRequest(in);
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.model_name(), "passthrough");
    EXPECT_THAT(resp.outputs(0).shape(),
                ::testing::ElementsAre(static_cast<int64_t>(blocks), 4096));
    ASSERT_EQ(resp.raw_output_contents_size(), 1);
    EXPECT_TRUE(resp.raw_output_contents(0) == r.raw_input_contents(0))
        << "passthrough changed the bytes of a " << blocks << "-block request";
    blocks_sent += blocks;
  }
  {
    ModelInferRequest r = PassthroughRequest(RandomInt8(rng, 4096, 20));
    (*r.mutable_parameters())["score_scale"].set_double_param(1);
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("(it takes none)"));
  }
  // Blocks are counted in user statistics; canary blocks are not.
  EXPECT_EQ(Stats(*stub, "passthrough").inference_count(), blocks_sent);
  EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), "passthrough"), "SERVING");
  EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), ""), "SERVING");
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

TEST_P(DaemonTest, BadRequestsGetTheRightStatusAndTheDaemonKeepsServing) {
  DaemonProcess d(Args({"--max_batch_frames=mel:64,attention:4"}));
  auto stub = d.stub();
  std::mt19937 rng(2);
  const auto audio = RandomAudio(rng, 2);
  struct Case {
    const char* what;
    std::function<void(ModelInferRequest&)> mutate;
    grpc::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"unknown model", [](auto& r) { r.set_model_name("whisper"); },
       grpc::NOT_FOUND, "unknown model 'whisper'"},
      {"dtype", [](auto& r) { r.mutable_inputs(0)->set_datatype("FP32"); },
       grpc::INVALID_ARGUMENT, "needs INT16"},
      {"shape", [](auto& r) { r.mutable_inputs(0)->set_shape(1, 401); },
       grpc::INVALID_ARGUMENT, "[N,400]"},
      {"byte size",
       [](auto& r) { r.mutable_raw_input_contents(0)->append("x"); },
       grpc::INVALID_ARGUMENT, "1601 bytes"},
      {"unknown tensor", [](auto& r) { r.mutable_inputs(0)->set_name("x"); },
       grpc::INVALID_ARGUMENT, "no input 'x'"},
      {"raw and typed mixed",
       [](auto& r) {
         r.mutable_inputs(0)->mutable_contents()->add_int_contents(3);
       },
       grpc::INVALID_ARGUMENT, "one or the other"},
      {"N over maximum",
       [](auto& r) {
         r.mutable_inputs(0)->set_shape(0, 65);
         r.mutable_raw_input_contents(0)->resize(65 * 800);
       },
       grpc::INVALID_ARGUMENT, "1 to 64"},
      {"bad parameter",
       [](auto& r) { (*r.mutable_parameters())["scale"].set_double_param(2); },
       grpc::INVALID_ARGUMENT, "no parameter 'scale'"},
  };
  for (const Case& c : cases) {
    ModelInferRequest r = MelRequest(audio);
    c.mutate(r);
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), c.code) << c.what << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message)) << c.what;
  }
  {
    auto q = RandomInt8(rng, 4096, 20);
    ModelInferRequest r = AttentionRequest(q, q, q, -1.0);
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("score_scale"));
  }
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(*stub, MelRequest(audio), &resp).ok());
  EXPECT_EQ(resp.raw_output_contents(0), MelReference(audio));
  const inference::ModelStatistics s = Stats(*stub, "mel");
  EXPECT_EQ(s.inference_stats().fail().count(), cases.size() - 1);
}

TEST_P(DaemonTest, ServesWithOneFramePerRun) {
  // The golden canary (8 frames) is cut to fit; the model must be SERVING.
  DaemonProcess d(Args({"--max_batch_frames=mel:1"}));
  auto stub = d.stub();
  grpc::ClientContext ctx;
  inference::ModelReadyRequest req;
  req.set_name("mel");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(stub->ModelReady(&ctx, req, &ready).ok());
  EXPECT_TRUE(ready.ready()) << d.log();
  std::mt19937 rng(6);
  const auto audio = RandomAudio(rng, 1);
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(*stub, MelRequest(audio), &resp).ok());
  EXPECT_EQ(resp.raw_output_contents(0), MelReference(audio));
}

TEST_P(DaemonTest, StreamAnswersEveryRequestAndReportsErrorsInline) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  grpc::ClientContext ctx;
  auto stream = stub->ModelStreamInfer(&ctx);
  std::mt19937 rng(3);
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 10; ++i) {
    auto audio = RandomAudio(rng, 1 + i);
    ModelInferRequest r = MelRequest(audio);
    r.set_id(absl::StrCat("req-", i));
    if (i == 4) r.mutable_inputs(0)->set_datatype("INT8");
    expected[r.id()] = i == 4 ? "" : MelReference(audio);
    ASSERT_TRUE(stream->Write(r));
  }
  stream->WritesDone();
  inference::ModelStreamInferResponse resp;
  int answers = 0;
  while (stream->Read(&resp)) {
    ++answers;
    const std::string& id = resp.infer_response().id();
    ASSERT_TRUE(expected.count(id)) << id;
    if (id == "req-4") {
      EXPECT_THAT(resp.error_message(), HasSubstr("needs INT16"));
    } else {
      EXPECT_EQ(resp.error_message(), "");
      EXPECT_EQ(resp.infer_response().raw_output_contents(0), expected[id]);
    }
  }
  EXPECT_EQ(answers, 10);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(DaemonTest, ExpiredDeadlineIsDeadlineExceededAndNeverReachesTheDevice) {
  // Every mel run takes 50 ms longer and carries one frame, so six one-frame
  // requests keep the device busy for at least 150 ms (3 runs on each of up
  // to 2 executors). B is sent only once the first of them has finished (an
  // event, not a head start: the other five have been queued for >= 50 ms),
  // so B waits behind at least four 50 ms runs and its 10 ms deadline runs
  // out in the queue.
  DaemonProcess d(Args({"--fault=mel:slow", "--max_batch_frames=mel:1"}));
  auto stub = d.stub();
  std::mt19937 rng(4);
  constexpr int kBusy = 6;
  std::vector<std::thread> busy;
  for (int i = 0; i < kBusy; ++i) {
    busy.emplace_back([&d, audio = RandomAudio(rng, 1)] {
      auto stub_a = d.stub();
      ModelInferResponse resp;
      EXPECT_TRUE(Infer(*stub_a, MelRequest(audio), &resp).ok());
    });
  }
  while (Stats(*stub, "mel").inference_count() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ModelInferResponse resp;
  grpc::Status s = Infer(*stub, MelRequest(RandomAudio(rng, 1)), &resp, 10);
  EXPECT_EQ(s.error_code(), grpc::DEADLINE_EXCEEDED);
  for (auto& t : busy) t.join();
  // Only the six busy frames ran (canaries are not counted).
  EXPECT_EQ(Stats(*stub, "mel").inference_count(), uint64_t{kBusy});
  // And the daemon serves on.
  ASSERT_TRUE(Infer(*stub, MelRequest(RandomAudio(rng, 1)), &resp).ok());
}

TEST_P(DaemonTest, SigtermAnswersEverythingAcceptedThenExitsZero) {
  DaemonProcess d(Args({"--drain-timeout=20s"}));  // hyphens work too
  std::atomic<bool> stop{false}, sigterm_sent{false};
  std::atomic<int> ok{0}, unavailable{0}, refused_at_close{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(c);
      auto stub = d.stub();
      while (!stop.load()) {
        auto audio = RandomAudio(rng, 1 + rng() % 50);
        ModelInferResponse resp;
        grpc::Status s = Infer(*stub, MelRequest(audio), &resp, 10000);
        if (s.ok()) {
          if (resp.raw_output_contents(0) == MelReference(audio)) {
            ++ok;
          } else {
            ++other;
          }
        } else if (s.error_code() == grpc::UNAVAILABLE) {
          ++unavailable;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        } else if (s.error_code() == grpc::CANCELLED && sigterm_sent.load() &&
                   (s.error_message().empty() ||
                    s.error_message() == "CANCELLED")) {
          // gRPC's transport cancels calls that had not reached a handler
          // when the server closes: never accepted, so nothing was lost.
          // (Accepted calls are cancelled with our own message.)
          ++refused_at_close;
        } else {
          ++other;
          ADD_FAILURE() << s.error_code() << " " << s.error_message();
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  sigterm_sent.store(true);
  const int code = d.Stop(SIGTERM);
  stop.store(true);
  for (auto& t : clients) t.join();
  EXPECT_EQ(code, 0) << d.log();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  EXPECT_THAT(d.log(), HasSubstr("draining"));
  std::cout << "[ drain ] answered " << ok.load() << ", UNAVAILABLE "
            << unavailable.load() << ", unmatched at close "
            << refused_at_close.load() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Backends, DaemonTest, ::testing::ValuesIn(Backends()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace npuk
