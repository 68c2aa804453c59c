// Hostile input over the real gRPC edge: every field of ModelInferRequest
// wrong in turn, for both models. Each must get the right status code and a
// message naming the problem, nothing may reach the device, and the daemon
// must answer a valid request correctly right after each one.
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk::testing {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using ::testing::HasSubstr;

constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

struct Case {
  const char* what;
  const char* model;  // which sample the mutation starts from
  std::function<void(ModelInferRequest&)> mutate;
  grpc::StatusCode code;
  const char* message;  // a substring the error message must contain
};

// Mel starts from a valid 2-frame request, attention from a valid 1-tile one.
std::vector<Case> Cases() {
  auto set_shape = [](std::vector<int64_t> dims) {
    return [dims](ModelInferRequest& r) {
      r.mutable_inputs(0)->clear_shape();
      for (int64_t d : dims) r.mutable_inputs(0)->add_shape(d);
    };
  };
  return {
      // Model name and version.
      {"unknown model", "mel", [](auto& r) { r.set_model_name("whisper"); },
       grpc::NOT_FOUND, "unknown model 'whisper'"},
      {"empty model name", "mel", [](auto& r) { r.set_model_name(""); },
       grpc::NOT_FOUND, "unknown model ''"},
      {"unknown version", "mel", [](auto& r) { r.set_model_version("7"); },
       grpc::NOT_FOUND, "no version '7'"},
      // Datatype.
      {"dtype FP32", "mel",
       [](auto& r) { r.mutable_inputs(0)->set_datatype("FP32"); },
       grpc::INVALID_ARGUMENT, "needs INT16"},
      {"dtype lower case", "mel",
       [](auto& r) { r.mutable_inputs(0)->set_datatype("int16"); },
       grpc::INVALID_ARGUMENT, "needs INT16"},
      {"dtype empty", "attention",
       [](auto& r) { r.mutable_inputs(1)->set_datatype(""); },
       grpc::INVALID_ARGUMENT, "needs INT8"},
      // Shape.
      {"shape rank 1", "mel", set_shape({2}), grpc::INVALID_ARGUMENT,
       "must be [N,400]"},
      {"shape rank 3", "mel", set_shape({2, 400, 1}), grpc::INVALID_ARGUMENT,
       "must be [N,400]"},
      {"shape empty", "mel", set_shape({}), grpc::INVALID_ARGUMENT,
       "must be [N,400]"},
      {"shape inner dim", "mel", set_shape({2, 401}), grpc::INVALID_ARGUMENT,
       "[N,400]"},
      {"shape transposed", "mel", set_shape({400, 2}), grpc::INVALID_ARGUMENT,
       "shape [400,2]"},
      {"N zero", "mel", set_shape({0, 400}), grpc::INVALID_ARGUMENT, "N = 0"},
      {"N negative", "mel", set_shape({-1, 400}), grpc::INVALID_ARGUMENT,
       "N = -1"},
      {"N int64 min", "mel",
       set_shape({std::numeric_limits<int64_t>::min(), 400}),
       grpc::INVALID_ARGUMENT, "N = -9223372036854775808"},
      {"N overflowing", "mel", set_shape({kMaxInt64, 400}),
       grpc::INVALID_ARGUMENT, "N = 9223372036854775807"},
      {"N overflowing product", "mel", set_shape({(kMaxInt64 / 800) + 1, 400}),
       grpc::INVALID_ARGUMENT, "N = "},
      {"N over max_batch_frames", "mel",
       [](auto& r) {
         r.mutable_inputs(0)->set_shape(0, 65);
         r.mutable_raw_input_contents(0)->resize(65 * 800);
       },
       grpc::INVALID_ARGUMENT, "1 to 64"},
      {"inner dim negative", "mel", set_shape({2, -400}),
       grpc::INVALID_ARGUMENT, "[N,400]"},
      {"attention inner dims", "attention",
       [](auto& r) { r.mutable_inputs(2)->set_shape(2, 32); },
       grpc::INVALID_ARGUMENT, "it must be [N, Lk, 64]"},
      {"attention N differs", "attention",
       [](auto& r) {
         r.mutable_inputs(1)->set_shape(0, 2);
         r.mutable_raw_input_contents(1)->resize(2 * 4096);
       },
       grpc::INVALID_ARGUMENT, "q, k and v must have the same N"},
      // Byte counts.
      {"raw one byte long", "mel",
       [](auto& r) { r.mutable_raw_input_contents(0)->append("x"); },
       grpc::INVALID_ARGUMENT, "1601 bytes"},
      {"raw one byte short", "mel",
       [](auto& r) { r.mutable_raw_input_contents(0)->pop_back(); },
       grpc::INVALID_ARGUMENT, "1599 bytes"},
      {"raw empty", "mel",
       [](auto& r) { r.mutable_raw_input_contents(0)->clear(); },
       grpc::INVALID_ARGUMENT, "is 0 bytes"},
      {"raw half of a tile", "attention",
       [](auto& r) { r.mutable_raw_input_contents(2)->resize(2048); },
       grpc::INVALID_ARGUMENT, "raw_input_contents for 'v' is 2048 bytes"},
      {"raw entries more than inputs", "mel",
       [](auto& r) { r.add_raw_input_contents(r.raw_input_contents(0)); },
       grpc::INVALID_ARGUMENT, "raw_input_contents has 2 entries"},
      {"raw entries fewer than inputs", "attention",
       [](auto& r) { r.mutable_raw_input_contents()->RemoveLast(); },
       grpc::INVALID_ARGUMENT, "raw_input_contents has 2 entries"},
      {"no data at all", "mel", [](auto& r) { r.clear_raw_input_contents(); },
       grpc::INVALID_ARGUMENT, "has no data"},
      // Raw and typed.
      {"raw and typed mixed", "mel",
       [](auto& r) {
         r.mutable_inputs(0)->mutable_contents()->add_int_contents(3);
       },
       grpc::INVALID_ARGUMENT, "one or the other"},
      {"typed count wrong", "mel",
       [](auto& r) {
         r.clear_raw_input_contents();
         for (int i = 0; i < 799; ++i) {
           r.mutable_inputs(0)->mutable_contents()->add_int_contents(i);
         }
       },
       grpc::INVALID_ARGUMENT, "799 values"},
      {"typed value out of INT16 range", "mel",
       [](auto& r) {
         r.clear_raw_input_contents();
         for (int i = 0; i < 800; ++i) {
           r.mutable_inputs(0)->mutable_contents()->add_int_contents(
               i == 17 ? 40000 : i);
         }
       },
       grpc::INVALID_ARGUMENT, "value 40000 at index 17"},
      {"typed in the wrong field", "mel",
       [](auto& r) {
         r.clear_raw_input_contents();
         for (int i = 0; i < 800; ++i) {
           r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(0.5f);
         }
       },
       grpc::INVALID_ARGUMENT, "int_contents"},
      {"typed value out of INT8 range", "attention",
       [](auto& r) {
         r.clear_raw_input_contents();
         for (int t = 0; t < 3; ++t) {
           for (int i = 0; i < 4096; ++i) {
             r.mutable_inputs(t)->mutable_contents()->add_int_contents(
                 t == 1 && i == 5 ? -129 : 1);
           }
         }
       },
       grpc::INVALID_ARGUMENT, "value -129 at index 5"},
      // Tensors: names, duplicates, missing, extra, outputs.
      {"unknown input name", "mel",
       [](auto& r) { r.mutable_inputs(0)->set_name("x"); },
       grpc::INVALID_ARGUMENT, "no input 'x'"},
      {"input name empty", "attention",
       [](auto& r) { r.mutable_inputs(0)->set_name(""); },
       grpc::INVALID_ARGUMENT, "no input ''"},
      {"duplicate input", "attention",
       [](auto& r) { r.mutable_inputs(2)->set_name("q"); },
       grpc::INVALID_ARGUMENT, "'q' appears twice"},
      {"missing input", "attention",
       [](auto& r) {
         r.mutable_inputs()->RemoveLast();
         r.mutable_raw_input_contents()->RemoveLast();
       },
       grpc::INVALID_ARGUMENT, "has 2 inputs; attention takes three"},
      {"no inputs", "mel",
       [](auto& r) {
         r.clear_inputs();
         r.clear_raw_input_contents();
       },
       grpc::INVALID_ARGUMENT, "the request has 0"},
      {"extra input", "mel",
       [](auto& r) {
         *r.add_inputs() = r.inputs(0);
         r.mutable_inputs(1)->set_name("audio2");
         r.add_raw_input_contents(r.raw_input_contents(0));
       },
       grpc::INVALID_ARGUMENT, "takes 1 input(s)"},
      {"unknown output", "mel",
       [](auto& r) { r.add_outputs()->set_name("mfcc"); },
       grpc::INVALID_ARGUMENT, "no output 'mfcc'"},
      // Parameters.
      {"unknown parameter", "mel",
       [](auto& r) { (*r.mutable_parameters())["scale"].set_double_param(2); },
       grpc::INVALID_ARGUMENT, "no parameter 'scale'"},
      {"score_scale on mel", "mel",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(0.1);
       },
       grpc::INVALID_ARGUMENT, "no parameter 'score_scale' (it takes none)"},
      {"score_scale negative", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(-1);
       },
       grpc::INVALID_ARGUMENT, "'score_scale' is -1"},
      {"score_scale zero", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(0);
       },
       grpc::INVALID_ARGUMENT, "'score_scale' is 0"},
      {"score_scale NaN", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(
             std::nan(""));
       },
       grpc::INVALID_ARGUMENT, "score_scale"},
      {"score_scale infinite", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(INFINITY);
       },
       grpc::INVALID_ARGUMENT, "score_scale"},
      {"score_scale huge", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_double_param(1e300);
       },
       grpc::INVALID_ARGUMENT, "score_scale"},
      {"score_scale a string", "attention",
       [](auto& r) {
         (*r.mutable_parameters())["score_scale"].set_string_param("0.125");
       },
       grpc::INVALID_ARGUMENT, "'score_scale' must be a number"},
      {"score_scale unset oneof", "attention",
       [](auto& r) { (*r.mutable_parameters())["score_scale"].Clear(); },
       grpc::INVALID_ARGUMENT, "'score_scale' must be a number"},
      {"timeout negative", "mel",
       [](auto& r) {
         (*r.mutable_parameters())["timeout"].set_int64_param(-5);
       },
       grpc::INVALID_ARGUMENT, "'timeout' must be a non-negative"},
      {"timeout a double", "mel",
       [](auto& r) {
         (*r.mutable_parameters())["timeout"].set_double_param(1000);
       },
       grpc::INVALID_ARGUMENT, "'timeout' must be a non-negative int64_param"},
  };
}

Sample Valid(const std::string& model) {
  std::mt19937 rng(model == "mel" ? 11 : 12);
  return model == "mel" ? MelSample(rng, 2) : AttentionSample(rng, 1);
}

class BadInputTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BadInputTest, EveryFieldWrongInTurnGetsTheRightStatusAndANamingMessage) {
  DaemonProcess d(
      {"--backend=" + GetParam(), "--max_batch_frames=mel:64,attention:4"});
  auto stub = d.stub();
  const Sample mel = Valid("mel");
  const Sample attention = Valid("attention");
  const std::vector<Case> cases = Cases();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Sample& base = std::string(c.model) == "mel" ? mel : attention;
    ModelInferRequest r = base.request;
    c.mutate(r);
    ModelInferResponse resp;
    const grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.message));
    EXPECT_EQ(resp.raw_output_contents_size(), 0);
    // The daemon serves on, with the right bytes, after every bad request.
    ModelInferResponse good;
    const grpc::Status ok = Infer(*stub, base.request, &good);
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    ASSERT_EQ(good.raw_output_contents_size(), 1);
    EXPECT_EQ(good.raw_output_contents(0), base.expected);
  }
  // Nothing bad reached the device: only the valid requests were inferred.
  uint64_t mel_good = 0, attention_good = 0;
  for (const Case& c : cases) {
    (std::string(c.model) == "mel" ? mel_good : attention_good) += 1;
  }
  EXPECT_EQ(Stats(*stub, "mel").inference_count(), mel_good * mel.items);
  EXPECT_EQ(Stats(*stub, "attention").inference_count(),
            attention_good * attention.items);
  std::cout << "[ bad input ] " << cases.size()
            << " malformed requests refused with the expected status\n";
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
}

TEST_P(BadInputTest, TypedContentsAreAcceptedWhenWellFormed) {
  DaemonProcess d({"--backend=" + GetParam()});
  auto stub = d.stub();
  const Sample mel = Valid("mel");
  ModelInferRequest r = mel.request;
  r.clear_raw_input_contents();
  const std::string& raw = mel.request.raw_input_contents(0);
  for (size_t i = 0; i < raw.size(); i += 2) {
    int16_t v = 0;
    std::memcpy(&v, raw.data() + i, 2);
    r.mutable_inputs(0)->mutable_contents()->add_int_contents(v);
  }
  ModelInferResponse resp;
  const grpc::Status s = Infer(*stub, r, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.raw_output_contents(0), mel.expected);
}

TEST_P(BadInputTest, OversizedMessageIsRefusedAndTheDaemonServesOn) {
  // max_message_bytes has no flag; set it through a config file.
  char dir[] = "/tmp/npukd-badinput-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string config = std::string(dir) + "/npukd.conf";
  {
    std::ofstream out(config);
    out << "max_message_bytes: 1048576\n";
  }
  DaemonProcess d({"--backend=" + GetParam(), "--config=" + config});
  auto stub = d.stub();
  std::mt19937 rng(5);
  // 1400 frames = 1.12 MB of audio: over the 1 MiB limit.
  const Sample big = MelSample(rng, 1400);
  ModelInferResponse resp;
  const grpc::Status s = Infer(*stub, big.request, &resp);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));
  // Just under the limit passes: 1200 frames = 960000 bytes of audio.
  const Sample fits = MelSample(rng, 1200);
  const grpc::Status ok = Infer(*stub, fits.request, &resp);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(resp.raw_output_contents(0), fits.expected);
  EXPECT_EQ(d.Stop(SIGTERM), 0) << d.log();
  std::remove(config.c_str());
  ::rmdir(dir);
}

TEST_P(BadInputTest, GarbageBytesOnTheStreamGetInlineErrorsAndTheStreamLives) {
  DaemonProcess d(
      {"--backend=" + GetParam(), "--max_batch_frames=mel:64,attention:4"});
  auto stub = d.stub();
  const Sample mel = Valid("mel");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->ModelStreamInfer(&ctx);
  const std::vector<Case> cases = Cases();
  std::map<std::string, const Case*> bad;
  int sent = 0;
  for (const Case& c : cases) {
    ModelInferRequest r = std::string(c.model) == "mel"
                              ? mel.request
                              : Valid("attention").request;
    c.mutate(r);
    r.set_id("bad-" + std::to_string(sent));
    bad[r.id()] = &c;
    ASSERT_TRUE(stream->Write(r));
    ModelInferRequest good = mel.request;
    good.set_id("good-" + std::to_string(sent));
    ASSERT_TRUE(stream->Write(good));
    ++sent;
  }
  stream->WritesDone();
  inference::ModelStreamInferResponse resp;
  std::map<std::string, int> answers;
  while (stream->Read(&resp)) {
    const std::string& id = resp.infer_response().id();
    ++answers[id];
    if (id.rfind("good-", 0) == 0) {
      EXPECT_EQ(resp.error_message(), "") << id;
      EXPECT_EQ(resp.infer_response().raw_output_contents(0), mel.expected);
    } else {
      ASSERT_TRUE(bad.count(id)) << id;
      EXPECT_THAT(resp.error_message(), HasSubstr(bad[id]->message))
          << bad[id]->what;
    }
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answers.size(), 2 * cases.size());
  for (const auto& [id, n] : answers) EXPECT_EQ(n, 1) << id;
}

INSTANTIATE_TEST_SUITE_P(Backends, BadInputTest,
                         ::testing::ValuesIn(Backends()), [](const auto& info) {
                           return BackendName(info.param);
                         });

}  // namespace
}  // namespace npuk::testing
