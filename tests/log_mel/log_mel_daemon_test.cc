// The log_mel model end to end: requests over the daemon's gRPC edge on
// every built backend, answers compared byte for byte with the host
// pipeline computed here (server/models/log_mel_math.h around the
// kernels' reference, which is what every backend must reproduce).
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <numbers>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "server/models/log_mel_math.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using npuk::testing::Backends;
using npuk::testing::DaemonProcess;
using npuk::testing::Infer;
using npuk::testing::Stats;
using ::testing::HasSubstr;

std::vector<float> Speech(size_t n, double scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0, 1);
  std::vector<float> a(n);
  for (size_t i = 0; i < n; ++i) {
    const double t = i / 16000.0;
    double x = 0;
    for (int h = 1; h < 30; ++h) {
      x += 0.05 / h * std::sin(2 * std::numbers::pi * 130 * h * t + h);
    }
    a[i] = static_cast<float>(scale * (x + 0.01 * g(rng)));
  }
  return a;
}

ModelInferRequest Request(const std::vector<float>& audio, int n_mels = 80,
                          int64_t padding = 0) {
  ModelInferRequest r;
  r.set_model_name("log_mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("FP32");
  in->add_shape(static_cast<int64_t>(audio.size()));
  r.add_raw_input_contents(std::string(
      reinterpret_cast<const char*>(audio.data()), audio.size() * 4));
  (*r.mutable_parameters())["n_mels"].set_int64_param(n_mels);
  if (padding) (*r.mutable_parameters())["padding"].set_int64_param(padding);
  return r;
}

ModelInferRequest Int16Request(const std::vector<int16_t>& audio) {
  ModelInferRequest r;
  r.set_model_name("log_mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(static_cast<int64_t>(audio.size()));
  r.add_raw_input_contents(std::string(
      reinterpret_cast<const char*>(audio.data()), audio.size() * 2));
  return r;
}

// What every backend must answer: the host pipeline over the kernel's
// reference, as little-endian FP32 bytes [n_mels, frames].
std::string Expected(const std::vector<float>& audio, int bands,
                     size_t padding = 0) {
  const KernelSpec* k = FindKernel(bands == 80 ? "mel_pcm" : "mel128_pcm");
  const int gain = *logmel::GainForFloat(audio);
  std::vector<int16_t> pcm(logmel::PcmSamples(audio.size() + padding));
  logmel::BuildPcmFloat(audio, padding, gain, pcm.data());
  const size_t frames = logmel::Frames(audio.size(), padding);
  std::vector<int16_t> l(frames * bands);
  const uint8_t* in[] = {reinterpret_cast<const uint8_t*>(pcm.data())};
  k->reference(in, reinterpret_cast<uint8_t*>(l.data()), frames);
  std::vector<float> out(l.size());
  logmel::Features(l, bands, frames, gain, out.data());
  return std::string(reinterpret_cast<const char*>(out.data()), out.size() * 4);
}

int64_t Param(const ModelInferResponse& r, const char* key) {
  return r.parameters().at(key).int64_param();
}

class LogMelTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    extra.push_back("--backend=" + GetParam());
    return extra;
  }
};

TEST_P(LogMelTest, AnswersAreTheHostPipelinesBytes) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  struct Case {
    std::vector<float> audio;
    int bands;
    size_t padding;
  };
  const std::vector<Case> cases = {
      {Speech(16000, 1.0, 1), 80, 0},
      {Speech(16000, 0.01, 2), 80, 0},     // -40 dBFS: gain 2^7
      {Speech(12345, 0.5, 3), 128, 0},     // S not a multiple of 160
      {Speech(4000, 0.3, 4), 80, 16000},   // padded
      {Speech(4000, 0.3, 4), 128, 16000},  // padded
      {std::vector<float>(1000, 0.f), 80, 0},
  };
  for (const Case& c : cases) {
    ModelInferResponse resp;
    grpc::Status s =
        Infer(*stub, Request(c.audio, c.bands, static_cast<int64_t>(c.padding)),
              &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const size_t frames = (c.audio.size() + c.padding) / 160;
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), "features");
    EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
    EXPECT_THAT(resp.outputs(0).shape(),
                ::testing::ElementsAre(c.bands, static_cast<int64_t>(frames)));
    ASSERT_EQ(resp.raw_output_contents_size(), 1);
    EXPECT_TRUE(resp.raw_output_contents(0) ==
                Expected(c.audio, c.bands, c.padding))
        << "bands " << c.bands << " samples " << c.audio.size();
  }
  // Silence is Whisper's silence: (log10(1e-10) + 4) / 4 everywhere.
  ModelInferResponse resp;
  ASSERT_TRUE(
      Infer(*stub, Request(std::vector<float>(400, 0.f), 80, 480000), &resp)
          .ok());
  const std::string& bytes = resp.raw_output_contents(0);
  ASSERT_EQ(bytes.size(), 80u * 3002 * 4);
  for (size_t i = 0; i < bytes.size(); i += 4) {
    float v;
    std::memcpy(&v, bytes.data() + i, 4);
    ASSERT_EQ(v, -1.5f) << i;
  }
  // INT16 audio is x = s / 32768: the same answer as the same FP32 audio.
  std::vector<int16_t> pcm(8000);
  std::vector<float> f(pcm.size());
  std::mt19937 rng(5);
  for (size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] = static_cast<int16_t>(static_cast<int>(rng() % 2001) - 1000);
    f[i] = pcm[i] / 32768.f;
  }
  ModelInferResponse a, b;
  ASSERT_TRUE(Infer(*stub, Int16Request(pcm), &a).ok());
  ASSERT_TRUE(Infer(*stub, Request(f), &b).ok());
  EXPECT_TRUE(a.raw_output_contents(0) == b.raw_output_contents(0));
  EXPECT_EQ(Param(a, "gain_log2"), 5);  // peak 1000 -> x32
}

TEST_P(LogMelTest, LongRequestSplitAcrossRunsEqualsOneRun) {
  const std::vector<float> audio = Speech(160 * 1000 + 77, 0.2, 9);
  std::string one, split;
  {
    DaemonProcess d(Args());
    ModelInferResponse resp;
    ASSERT_TRUE(Infer(*d.stub(), Request(audio, 128), &resp).ok());
    EXPECT_EQ(Param(resp, "device_runs"), 1);
    one = resp.raw_output_contents(0);
  }
  {
    DaemonProcess d(Args({"--max_batch_frames=mel128_pcm:64"}));
    ModelInferResponse resp;
    ASSERT_TRUE(Infer(*d.stub(), Request(audio, 128), &resp).ok());
    EXPECT_EQ(Param(resp, "device_runs"), 16);  // ceil(1000 / 64)
    split = resp.raw_output_contents(0);
    EXPECT_EQ(Stats(*d.stub(), "log_mel").inference_count(), 1000u);
  }
  EXPECT_TRUE(one == split);
  EXPECT_TRUE(one == Expected(audio, 128));
}

TEST_P(LogMelTest, ConcurrentRequestsShareRuns) {
  // A 30 ms batching window so that concurrent requests meet in a run.
  DaemonProcess d(Args({"--max_queue_delay_us=mel_pcm:30000"}));
  constexpr int kClients = 12;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      const std::vector<float> audio = Speech(160 * (20 + c) + 40, 0.1, c);
      ModelInferResponse resp;
      grpc::Status s = Infer(*d.stub(), Request(audio), &resp);
      if (!s.ok()) {
        ADD_FAILURE() << s.error_message();
      } else if (resp.raw_output_contents(0) != Expected(audio, 80)) {
        ADD_FAILURE() << "client " << c << " got wrong features";
      } else {
        ++ok;
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  const inference::ModelStatistics st = Stats(*d.stub(), "log_mel");
  EXPECT_EQ(st.inference_stats().success().count(), uint64_t{kClients});
  uint64_t frames = 0;
  for (int c = 0; c < kClients; ++c) frames += 20 + c;  // (S + 0) / 160
  EXPECT_EQ(st.inference_count(), frames);
  std::printf("%d concurrent requests, %llu frames: %llu device runs\n",
              kClients, static_cast<unsigned long long>(st.inference_count()),
              static_cast<unsigned long long>(st.execution_count()));
  EXPECT_LT(st.execution_count(), uint64_t{kClients});
  EXPECT_GE(st.execution_count(), 1u);
}

TEST_P(LogMelTest, BadInputGetsClearErrors) {
  const std::string config =
      absl::StrCat(::testing::TempDir(), "/log_mel_", GetParam(), ".conf");
  std::ofstream(config) << "max_message_bytes: 1048576\n";
  DaemonProcess d(Args({"--config=" + config}));
  auto stub = d.stub();
  auto expect = [&](ModelInferRequest r, grpc::StatusCode code,
                    const std::string& text) {
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), code) << text << ": " << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(text));
  };
  const auto audio = Speech(1600, 0.3, 1);
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;

  ModelInferRequest odd = Int16Request(std::vector<int16_t>(1000, 7));
  odd.mutable_raw_input_contents(0)->push_back('x');
  expect(odd, kInvalid, "odd count");
  expect(Request({}), kInvalid, "more than 200 samples");
  expect(Request(std::vector<float>(200, 0.1f)), kInvalid,
         "more than 200 samples");
  expect(Request(audio, 64), kInvalid, "80 or 128");
  auto nan = audio;
  nan[100] = std::numeric_limits<float>::quiet_NaN();
  expect(Request(nan), kInvalid, "sample 100 is NaN");
  auto inf = audio;
  inf[7] = std::numeric_limits<float>::infinity();
  expect(Request(inf), kInvalid, "sample 7 is infinite");
  ModelInferRequest int32 = Request(audio);
  int32.mutable_inputs(0)->set_datatype("INT32");
  expect(int32, kInvalid, "FP32 (full scale 1.0) or INT16");
  ModelInferRequest two_d = Request(audio);
  two_d.mutable_inputs(0)->add_shape(1);
  expect(two_d, kInvalid, "shape [S]");
  ModelInferRequest short_raw = Request(audio);
  short_raw.mutable_raw_input_contents(0)->resize(4 * 1000);
  expect(short_raw, kInvalid, "needs 6400");
  ModelInferRequest neg = Request(audio);
  (*neg.mutable_parameters())["padding"].set_int64_param(-1);
  expect(neg, kInvalid, "non-negative");
  ModelInferRequest unknown = Request(audio);
  (*unknown.mutable_parameters())["hop"].set_int64_param(100);
  expect(unknown, kInvalid, "unknown parameter 'hop'");
  // Over the message limit: gRPC refuses the request itself, and features
  // that would not fit a response are refused before they run.
  expect(Request(Speech(300000, 0.1, 2)), grpc::StatusCode::RESOURCE_EXHAUSTED,
         "");
  expect(Request(audio, 128, 16000 * 60), grpc::StatusCode::RESOURCE_EXHAUSTED,
         "over this server's message limit");
  // Whisper with S = 0 and padding works; so does log_mel.
  ModelInferResponse resp;
  EXPECT_TRUE(Infer(*stub, Request({}, 80, 1600), &resp).ok());
  EXPECT_EQ(resp.outputs(0).shape(1), 10);
  // Still serving, and the failures are counted.
  EXPECT_TRUE(Infer(*stub, Request(audio), &resp).ok());
  EXPECT_GE(Stats(*stub, "log_mel").inference_stats().fail().count(), 11u);
}

// Sends SIGUSR2 (npukd toggles its fault drills) and waits, at most 5 s,
// until npukd logged that it took it.
void ToggleFaults(const DaemonProcess& d) {
  const std::string needle = "SIGUSR2: fault injection";
  auto count = [&] {
    const std::string log = d.log();
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos;
         at = log.find(needle, at + 1)) {
      ++n;
    }
    return n;
  };
  const size_t before = count();
  d.Signal(SIGUSR2);
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (count() == before && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(count(), before) << "SIGUSR2 not taken:\n" << d.log();
}

// log_mel's health is its kernels' canaries (the daemon's health monitor
// replays mel_pcm's and mel128_pcm's goldens): a good device is SERVING in
// grpc.health.v1 and ModelReady; a faulty one (the fault decorator,
// docs/RELIABILITY.md, armed from the start so the start-up canary fails)
// on either kernel makes log_mel NOT_SERVING while mel, on its own healthy
// kernel, stays SERVING; cleared (SIGUSR2), log_mel is SERVING again and
// answers exactly; armed again, the interval canary takes it down.
TEST_P(LogMelTest, HealthFollowsItsKernelsCanaries) {
  const std::vector<float> audio = Speech(3200, 0.2, 5);
  {
    DaemonProcess d(Args());
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), "log_mel"), "SERVING");
    EXPECT_EQ(npuk::testing::ModelReady(*d.stub(), "log_mel"), true);
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), ""), "SERVING");
  }
  for (const auto& [fault, bands] :
       {std::pair{"mel_pcm:garbage", 80}, std::pair{"mel128_pcm:zeros", 128}}) {
    SCOPED_TRACE(fault);
    DaemonProcess d(
        Args({std::string("--fault=") + fault, "--health_interval=300ms"}));
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), "log_mel"),
              "NOT_SERVING");
    EXPECT_EQ(npuk::testing::ModelReady(*d.stub(), "log_mel"), false);
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), "mel"), "SERVING");
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), ""), "NOT_SERVING");
    ToggleFaults(d);
    ASSERT_TRUE(
        npuk::testing::WaitForServing(*d.channel(), "log_mel", true, 15000))
        << d.log();
    ModelInferResponse resp;
    grpc::Status s = Infer(*d.stub(), Request(audio, bands), &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.raw_output_contents(0), Expected(audio, bands));
    ToggleFaults(d);
    EXPECT_TRUE(
        npuk::testing::WaitForServing(*d.channel(), "log_mel", false, 10000))
        << d.log();
    EXPECT_EQ(npuk::testing::HealthCheck(*d.channel(), "mel"), "SERVING");
  }
}

TEST_P(LogMelTest, MetadataConfigAndIndexShowTheModel) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest req;
    req.set_name("log_mel");
    inference::ModelMetadataResponse resp;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.inputs_size(), 1);
    EXPECT_EQ(resp.inputs(0).name(), "audio");
    EXPECT_THAT(resp.inputs(0).shape(), ::testing::ElementsAre(-1));
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), "features");
    EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(-1, -1));
  }
  {
    grpc::ClientContext ctx;
    inference::ModelConfigRequest req;
    req.set_name("log_mel");
    inference::ModelConfigResponse resp;
    ASSERT_TRUE(stub->ModelConfig(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.config().max_batch_size(), 0);
    EXPECT_THAT(resp.config().parameters().at("kernels").string_value(),
                HasSubstr("mel_pcm (80 bands"));
    EXPECT_TRUE(resp.config().parameters().contains("padding"));
  }
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexRequest req;
    inference::RepositoryIndexResponse resp;
    ASSERT_TRUE(stub->RepositoryIndex(&ctx, req, &resp).ok());
    std::vector<std::string> names;
    for (const auto& m : resp.models()) names.push_back(m.name());
    EXPECT_THAT(names, ::testing::Contains("log_mel"));
    EXPECT_THAT(names, ::testing::Not(::testing::Contains("mel_pcm")));
  }
  {
    grpc::ClientContext ctx;
    inference::ModelReadyRequest req;
    req.set_name("log_mel");
    inference::ModelReadyResponse resp;
    ASSERT_TRUE(stub->ModelReady(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.ready());
  }
  // The internal kernels are not models on the wire.
  ModelInferRequest r = Request(Speech(1600, 0.1, 1));
  r.set_model_name("mel_pcm");
  ModelInferResponse resp;
  EXPECT_EQ(Infer(*stub, r, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(Backends, LogMelTest, ::testing::ValuesIn(Backends()),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// The same requests on cpu and npu-sim give the same bytes.
TEST(LogMelBackends, BitExactAcrossBackends) {
  const std::vector<std::string> backends = Backends();
  if (backends.size() < 2) GTEST_SKIP() << "only one backend built";
  std::vector<std::vector<std::string>> answers;
  for (const std::string& b : backends) {
    DaemonProcess d({"--backend=" + b});
    auto stub = d.stub();
    std::vector<std::string> got;
    for (int bands : {80, 128}) {
      for (uint32_t seed : {1u, 2u}) {
        ModelInferResponse resp;
        const auto audio = Speech(16000 + 333 * seed, 0.05 * seed, seed);
        ASSERT_TRUE(Infer(*stub, Request(audio, bands, 800), &resp).ok());
        got.push_back(resp.raw_output_contents(0));
      }
    }
    answers.push_back(got);
  }
  for (size_t i = 1; i < answers.size(); ++i) {
    EXPECT_TRUE(answers[i] == answers[0])
        << backends[i] << " vs " << backends[0];
  }
}

}  // namespace
}  // namespace npuk
