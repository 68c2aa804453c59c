// npuk::Client against a real npukd on a temporary unix socket, and the
// attention request builders, which need none.
#include "client/cpp/client.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "client/cpp/log_mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::vector<int16_t> Tone(size_t frames, double hz) {
  std::vector<int16_t> x(frames * kMelFrameSamples);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<int16_t>(
        std::lrint(12000 * std::sin(2 * M_PI * hz * i / kSampleRate)));
  }
  return x;
}

std::vector<int8_t> Ramp(size_t tiles, int seed) {
  std::vector<int8_t> x(tiles * kTileDim * kTileDim);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<int8_t>((i * 37 + seed * 11) % 61 - 30);
  }
  return x;
}

std::vector<float> Gaussian(size_t n, double sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(sigma));
  std::vector<float> x(n);
  for (float& f : x) f = normal(rng);
  return x;
}

// softmax(q k^T / 8) v in double, [n, lq, 64] from [n, lq|lk, 64].
std::vector<double> FloatAttention(const std::vector<float>& q,
                                   const std::vector<float>& k,
                                   const std::vector<float>& v,
                                   const AttentionShape& s, bool causal) {
  std::vector<double> out(s.n * s.lq * kTileDim), w(s.lk);
  for (int64_t h = 0; h < s.n; ++h) {
    for (int64_t i = 0; i < s.lq; ++i) {
      const int64_t seen = causal ? i + s.lk - s.lq + 1 : s.lk;
      double top = -INFINITY, sum = 0;
      for (int64_t j = 0; j < seen; ++j) {
        double dot = 0;
        for (size_t d = 0; d < kTileDim; ++d) {
          dot += double{q[(h * s.lq + i) * kTileDim + d]} *
                 k[(h * s.lk + j) * kTileDim + d];
        }
        w[j] = dot / 8;
        top = std::max(top, w[j]);
      }
      for (int64_t j = 0; j < seen; ++j) sum += w[j] = std::exp(w[j] - top);
      for (int64_t j = 0; j < seen; ++j) {
        for (size_t d = 0; d < kTileDim; ++d) {
          out[(h * s.lq + i) * kTileDim + d] +=
              w[j] / sum * v[(h * s.lk + j) * kTileDim + d];
        }
      }
    }
  }
  return out;
}

double Cosine(absl::Span<const float> a, absl::Span<const double> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += a[i] * b[i];
    aa += double{a[i]} * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

std::vector<int64_t> Dims(const inference::ModelInferRequest& r, int input) {
  return {r.inputs(input).shape().begin(), r.inputs(input).shape().end()};
}

std::vector<std::string> ParamNames(const inference::ModelInferRequest& r) {
  std::vector<std::string> names;
  for (const auto& [name, value] : r.parameters()) names.push_back(name);
  return names;
}

TEST(AttentionRequestTest, TileCallIsTodaysRequest) {
  const auto q = Ramp(2, 1), k = Ramp(2, 2), v = Ramp(2, 3);
  auto tiles = Client::AttentionRequest(q, k, v, 0.01);
  ASSERT_TRUE(tiles.ok()) << tiles.status();
  EXPECT_EQ(tiles->model_name(), "attention");
  ASSERT_EQ(tiles->inputs_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tiles->inputs(i).name(), std::string(1, "qkv"[i]));
    EXPECT_EQ(tiles->inputs(i).datatype(), "INT8");
    EXPECT_THAT(Dims(*tiles, i), ElementsAre(2, 64, 64));
  }
  EXPECT_EQ(tiles->raw_input_contents(0), std::string(q.begin(), q.end()));
  EXPECT_THAT(ParamNames(*tiles), ElementsAre("score_scale"));
  EXPECT_EQ(tiles->parameters().at("score_scale").double_param(), 0.01);
  // The sequence builder with the defaults sends the same request.
  auto same = Client::AttentionRequest(q, k, v, {.n = 2, .lq = 64, .lk = 64},
                                       {.score_scale = 0.01});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->DebugString(), tiles->DebugString());
}

TEST(AttentionRequestTest, SequenceRequestSendsWhatIsNotTheDefault) {
  const std::vector<int8_t> q(2 * 1 * 64, 1), kv(2 * 448 * 64, 2);
  auto r = Client::AttentionRequest(
      q, kv, kv, {.n = 2, .lq = 1, .lk = 448},
      {.score_scale = 0.002, .output_scale = 0.25, .causal = true});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(Dims(*r, 0), ElementsAre(2, 1, 64));
  EXPECT_THAT(Dims(*r, 1), ElementsAre(2, 448, 64));
  EXPECT_THAT(Dims(*r, 2), ElementsAre(2, 448, 64));
  EXPECT_THAT(ParamNames(*r),
              UnorderedElementsAre("score_scale", "output_scale", "causal"));
  EXPECT_EQ(r->parameters().at("output_scale").double_param(), 0.25);
  EXPECT_EQ(r->parameters().at("causal").parameter_choice_case(),
            inference::InferParameter::kBoolParam);
  EXPECT_TRUE(r->parameters().at("causal").bool_param());
  auto plain = Client::AttentionRequest(q, kv, kv, {.n = 2, .lq = 1, .lk = 448},
                                        {.output_scale = 2.0});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(ParamNames(*plain),
              UnorderedElementsAre("score_scale", "output_scale"));
}

TEST(AttentionRequestTest, RefusesBadShapesWithTheirReason) {
  const struct {
    AttentionShape shape;
    size_t q_size, kv_size;
    bool causal;
    const char* says;
  } cases[] = {
      {{.n = 0, .lq = 4, .lk = 4}, 0, 0, false, "send at least one head"},
      {{.n = 1, .lq = 0, .lk = 4}, 0, 256, false, "lq is 0 tokens"},
      {{.n = 1, .lq = 4, .lk = 5000},
       256,
       5000 * 64,
       false,
       "windows of at most 4096"},
      {{.n = 1, .lq = 4, .lk = 4},
       256,
       128,
       false,
       "k, v have 256, 128, 128 values"},
      {{.n = 1, .lq = 4, .lk = 2},
       256,
       128,
       true,
       "lq <= lk (query i sees keys j <= i + lk - lq); got lq = 4, lk = 2"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.says);
    const std::vector<int8_t> q(c.q_size), kv(c.kv_size);
    auto r = Client::AttentionRequest(q, kv, kv, c.shape, {.causal = c.causal});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.says));
  }
  const std::vector<int8_t> q(3 * 64), kv(5 * 64);
  auto causal = Client::AttentionRequest(q, kv, kv, {.n = 1, .lq = 3, .lk = 5},
                                         {.causal = true});
  EXPECT_TRUE(causal.ok()) << causal.status();
  auto partial = Client::AttentionRequest(q, q, q, 0.1);
  EXPECT_THAT(partial.status().message(), HasSubstr("AttentionShape"));
}

TEST(AttentionRequestTest, QuantisesPerTensorLikeNumpy) {
  const std::vector<float> x = {0.0f,   0.01f,  -0.02f,  1.27f, -1.27f,
                                0.635f, 0.005f, -0.015f, 0.3f,  1e-9f};
  const QuantizedTensor q = QuantizePerTensor(x);
  // npuk.quantize's bytes: float32 division, round half to even.
  EXPECT_THAT(q.values, ElementsAre(0, 1, -2, 127, -127, 64, 0, -2, 30, 0));
  EXPECT_EQ(q.scale, double{1.27f} / 127);
  EXPECT_THAT(QuantizePerTensor(x, 0.02).values,
              ElementsAre(0, 0, -1, 64, -64, 32, 0, -1, 15, 0));
  EXPECT_EQ(QuantizePerTensor(std::vector<float>(3, 0.0f)).scale, 1.0);
}

TEST(AttentionRequestTest, FloatRequestCarriesTheScales) {
  const AttentionShape shape{.n = 3, .lq = 20, .lk = 90};
  const auto q = Gaussian(3 * 20 * 64, 1.5, 1), k = Gaussian(3 * 90 * 64, 2, 2),
             v = Gaussian(3 * 90 * 64, 0.7, 3);
  auto sent = Client::AttentionRequest(q, k, v, shape, {.causal = true});
  ASSERT_TRUE(sent.ok()) << sent.status();
  const QuantizedTensor qi = QuantizePerTensor(q), ki = QuantizePerTensor(k),
                        vi = QuantizePerTensor(v);
  EXPECT_EQ(sent->request.raw_input_contents(0),
            std::string(qi.values.begin(), qi.values.end()));
  EXPECT_EQ(sent->request.raw_input_contents(2),
            std::string(vi.values.begin(), vi.values.end()));
  EXPECT_DOUBLE_EQ(sent->params.score_scale, qi.scale * ki.scale / 8);
  EXPECT_EQ(sent->request.parameters().at("score_scale").double_param(),
            sent->params.score_scale);
  EXPECT_TRUE(sent->params.causal);
  EXPECT_EQ(sent->params.output_scale, ChooseOutputScale(q, k, v, shape, true));
  EXPECT_DOUBLE_EQ(sent->out_unit, vi.scale * sent->params.output_scale);
  auto given = Client::AttentionRequest(q, k, v, shape, {.output_scale = 1.0});
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_THAT(ParamNames(given->request), ElementsAre("score_scale"));
}

TEST(AttentionRequestTest, OutputScaleSpansTheResult) {
  // Zero keys: every row is the mean of v, computed exactly (lq <= 64
  // rows, all in the sample): the scale spans 1.1 times its peak.
  const AttentionShape shape{.n = 2, .lq = 3, .lk = 500};
  const auto q = Gaussian(2 * 3 * 64, 1, 4), v = Gaussian(2 * 500 * 64, 1, 5);
  const std::vector<float> k(2 * 500 * 64, 0.0f);
  double peak = 0, v_peak = 0;
  for (float f : v) v_peak = std::max(v_peak, double{std::fabs(f)});
  for (int h = 0; h < 2; ++h) {
    for (size_t d = 0; d < kTileDim; ++d) {
      double mean = 0;
      for (int j = 0; j < 500; ++j) mean += v[(h * 500 + j) * kTileDim + d];
      peak = std::max(peak, std::fabs(mean / 500));
    }
  }
  EXPECT_NEAR(ChooseOutputScale(q, k, v, shape, false), 1.1 * peak / v_peak,
              1e-6);
  // One key: the output is v's row, whose peak is max|v|: scale 1.
  const AttentionShape one{.n = 1, .lq = 5, .lk = 1};
  EXPECT_EQ(ChooseOutputScale(Gaussian(5 * 64, 1, 6), Gaussian(64, 1, 7),
                              Gaussian(64, 1, 8), one, false),
            1.0);
  // Causal 448 with the sample's rows: the int8 answer never passes 127.
  const AttentionShape causal{.n = 4, .lq = 448, .lk = 448};
  const auto cq = Gaussian(4 * 448 * 64, 1, 9),
             ck = Gaussian(4 * 448 * 64, 1, 10),
             cv = Gaussian(4 * 448 * 64, 1, 11);
  const double os = ChooseOutputScale(cq, ck, cv, causal, true);
  const auto ref = FloatAttention(cq, ck, cv, causal, true);
  double ref_peak = 0, cv_peak = 0;
  for (double x : ref) ref_peak = std::max(ref_peak, std::fabs(x));
  for (float f : cv) cv_peak = std::max(cv_peak, double{std::fabs(f)});
  EXPECT_GE(os * cv_peak, ref_peak);
  EXPECT_LE(os * cv_peak, 1.1 * ref_peak * 1.0001);
}

TEST(AttentionRequestTest, ScoreScaleStaysInTheDaemonsRange) {
  const AttentionShape shape{.n = 1, .lq = 50, .lk = 50};
  const auto small = Gaussian(50 * 64, 0.05, 12);
  auto sent = Client::AttentionRequest(small, small, small, shape, {});
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_NEAR(sent->params.score_scale, 0x1p-16, 1e-18);
  EXPECT_GE(sent->params.score_scale, 0x1p-16);
  const std::vector<float> big(50 * 64, 1000.0f);
  auto refused = Client::AttentionRequest(big, big, big, shape, {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("too large for int8"));
  auto nan = small;
  nan[70] = NAN;
  EXPECT_THAT(
      Client::AttentionRequest(small, nan, small, shape, {}).status().message(),
      HasSubstr("k has 1 NaN or infinite values (the first at index "
                "70)"));
  EXPECT_THAT(Client::AttentionRequest(small, small, small, shape,
                                       {.output_scale = 0.0})
                  .status()
                  .message(),
              HasSubstr("output_scale is 0"));
}

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::DaemonProcess(
        {"--backend=cpu", "--max_batch_frames=mel:3000"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    auto c = Client::Connect({.target = daemon_->target()});
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  static testing::DaemonProcess* daemon_;
  std::unique_ptr<Client> client_;
};

testing::DaemonProcess* ClientTest::daemon_ = nullptr;

TEST_F(ClientTest, MelCarriesTimingAndIsBatchInvariant) {
  const auto frames = Tone(5, 440);
  auto all = client_->Mel(frames);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->frames, 5u);
  ASSERT_EQ(all->log_mel.size(), 5 * kMelBins);
  EXPECT_EQ(all->timing.backend, "cpu");
  EXPECT_GE(all->timing.batch_frames, 5);
  EXPECT_GT(all->timing.server, absl::ZeroDuration());
  EXPECT_GE(all->timing.round_trip, all->timing.server);
  // Each frame alone must give the same bytes as inside the batch.
  for (size_t f = 0; f < 5; ++f) {
    auto one = client_->Mel(absl::MakeConstSpan(frames).subspan(
        f * kMelFrameSamples, kMelFrameSamples));
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(one->log_mel,
              std::vector<int8_t>(all->log_mel.begin() + f * kMelBins,
                                  all->log_mel.begin() + (f + 1) * kMelBins));
  }
}

TEST_F(ClientTest, LogMelSpectrogramPeaksAtTheToneFrequency) {
  // 1 s of 1 kHz: the loudest mel bin must be the one whose centre is nearest
  // 1 kHz (Slaney scale: 1000 Hz is mel 15, bin index ~ 15/45.2*81 - 1).
  std::vector<float> audio(kSampleRate);
  for (size_t i = 0; i < audio.size(); ++i) {
    audio[i] = 0.5f * std::sin(2 * M_PI * 1000.0 * i / kSampleRate);
  }
  auto r = client_->LogMelSpectrogram(audio);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->frames, 100u);
  ASSERT_EQ(r->features.size(), kMelBins * 100);
  const size_t mid = 50;
  size_t best = 0;
  for (size_t b = 1; b < kMelBins; ++b) {
    if (r->features[b * 100 + mid] > r->features[best * 100 + mid]) best = b;
  }
  EXPECT_NEAR(static_cast<double>(best), 26.0, 1.0);
  const auto [lo, hi] =
      std::minmax_element(r->features.begin(), r->features.end());
  // Clamped to max - 8 in log10 units (2 in Whisper's); log_mel's values
  // are on a 1/64 grid while its floor is exact.
  EXPECT_NEAR(*hi - *lo, 2.0f, 1.0f / 64);
}

TEST_F(ClientTest, ThirtySecondClipIsOneRequest) {
  std::vector<float> audio(30 * kSampleRate, 0.0f);
  for (size_t i = 0; i < audio.size(); ++i) {
    audio[i] = 0.1f * std::sin(2 * M_PI * 300.0 * i / kSampleRate);
  }
  auto r = client_->LogMelSpectrogram(audio);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->frames, 3000u);
  EXPECT_GE(r->timing.batch_frames, 3000);
}

TEST_F(ClientTest, AttentionReturnsTilesAndHonoursScoreScale) {
  const auto q = Ramp(3, 1), k = Ramp(3, 2), v = Ramp(3, 3);
  auto a = client_->Attention(q, k, v, 0.125);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->tiles, 3u);
  EXPECT_EQ(a->out.size(), 3 * kTileDim * kTileDim);
  EXPECT_EQ(a->timing.backend, "cpu");
  auto b = client_->Attention(q, k, v, 0.001);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(a->out, b->out);
  auto bad = client_->Attention(q, k, v, -1.0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("score_scale"));
}

TEST_F(ClientTest, LocalValidationExplainsTheShape) {
  std::vector<int16_t> partial(399);
  auto r = client_->Mel(partial);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("400"));
}

TEST_F(ClientTest, ServerErrorsKeepCodeAndMessage) {
  auto req = Client::MelRequest(Tone(1, 440));
  ASSERT_TRUE(req.ok());
  req->set_model_name("nosuchmodel");
  auto r = client_->Infer(*req);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nosuchmodel"));

  auto big = client_->Mel(Tone(3001, 440));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("3001"));
}

TEST_F(ClientTest, DeadlineAndCancellation) {
  const auto frames = Tone(1, 440);
  // gRPC deadlines have millisecond resolution: take longer than that.
  auto late = client_->Mel(Tone(3000, 440), {.deadline = absl::Now()});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);

  Cancellation cancel;
  cancel.Cancel();
  auto c = client_->Mel(frames, {.cancellation = &cancel});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kCancelled);

  absl::Notification done;
  absl::Status async_status;
  Cancellation cancel2;
  cancel2.Cancel();
  client_->MelAsync(frames, {.cancellation = &cancel2},
                    [&](absl::StatusOr<MelResult> r) {
                      async_status = r.status();
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(async_status.code(), absl::StatusCode::kCancelled);
}

TEST_F(ClientTest, ConcurrentAsyncCallsMatchSync) {
  // Whether they share device runs is the batcher's business (tested in
  // tests/integration); here every one must come back, with its own bytes.
  const auto frames = Tone(1, 700);
  auto sync = client_->Mel(frames);
  ASSERT_TRUE(sync.ok()) << sync.status();
  constexpr int kCalls = 64;
  absl::BlockingCounter left(kCalls);
  std::atomic<int> same{0}, ok{0};
  for (int i = 0; i < kCalls; ++i) {
    client_->MelAsync(frames, {}, [&](absl::StatusOr<MelResult> r) {
      if (r.ok()) {
        ++ok;
        if (r->log_mel == sync->log_mel && r->timing.batch_frames >= 1) ++same;
      }
      left.DecrementCount();
    });
  }
  left.Wait();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(same.load(), kCalls);
}

TEST_F(ClientTest, HealthAndStatistics) {
  // Canaries may still be running just after start-up.
  absl::StatusOr<HealthStatus> h;
  for (int i = 0; i < 100; ++i) {
    h = client_->Health("mel");
    if (h.ok() && *h == grpc::health::v1::HealthCheckResponse::SERVING) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, grpc::health::v1::HealthCheckResponse::SERVING);
  auto server = client_->Health("");
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(*server, grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(client_->Health("nosuchmodel").status().code(),
            absl::StatusCode::kNotFound);

  ASSERT_TRUE(client_->Mel(Tone(2, 440)).ok());
  auto st = client_->Statistics("mel");
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->model_stats_size(), 1);
  EXPECT_EQ(st->model_stats(0).name(), "mel");
  EXPECT_GE(st->model_stats(0).inference_count(), 2u);
  EXPECT_GE(st->model_stats(0).execution_count(), 1u);
}

// The generic path, on a model this client has no typed method for: the
// request is built from the daemon's metadata alone.
TEST_F(ClientTest, AnyModelFromItsMetadata) {
  auto info = client_->Describe("passthrough");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->inputs.size(), 1u);
  ASSERT_EQ(info->outputs.size(), 1u);
  const std::string in = info->inputs[0].name, out = info->outputs[0].name;
  EXPECT_GT(info->max_items, 0);

  auto x = RandomInputs(*info, 3);
  ASSERT_TRUE(x.ok()) << x.status();
  auto r = client_->Infer("passthrough", *x);
  ASSERT_TRUE(r.ok()) << r.status();
  const Tensor& y = r->outputs.at(out);
  EXPECT_EQ(y.datatype, info->outputs[0].datatype);
  ASSERT_EQ(y.shape.size(), info->outputs[0].item_dims.size() + 1);
  EXPECT_EQ(y.shape[0], 3);
  EXPECT_EQ(y.data, x->at(in).data);  // the same bytes back
  EXPECT_EQ(r->timing.backend, "cpu");
  EXPECT_GE(r->timing.batch_frames, 3);

  // Local checks name the problem before any call; the daemon's limit is
  // its own.
  auto partial = client_->Infer("passthrough", {{in, {.data = "abc"}}});
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(partial.status().message(), HasSubstr("whole items"));
  auto big = RandomInputs(*info, info->max_items + 1);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(client_->Infer("passthrough", *big).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Describe("nosuchmodel").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, EveryServedModelTakesRandomInputs) {
  auto idx = client_->Repository();
  ASSERT_TRUE(idx.ok()) << idx.status();
  std::vector<std::string> names;
  for (const auto& m : idx->models()) names.push_back(m.name());
  EXPECT_THAT(names,
              ::testing::IsSupersetOf({"mel", "attention", "passthrough"}));
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    auto info = client_->Describe(name);
    ASSERT_TRUE(info.ok()) << info.status();
    // No batch dimension (Triton's max_batch_size 0): log_mel takes one [S]
    // of audio and has its own tests (log_mel_daemon_test.cc).
    if (info->max_items == 0) continue;
    auto x = RandomInputs(*info, 2);
    ASSERT_TRUE(x.ok()) << x.status();
    auto r = client_->Infer(name, *x);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->outputs.size(), info->outputs.size());
    for (const TensorInfo& o : info->outputs) {
      EXPECT_EQ(r->outputs.at(o.name).shape[0], 2);
      EXPECT_EQ(r->outputs.at(o.name).data.size(), 2 * o.item_bytes());
    }
  }
}

TEST_F(ClientTest, GenericAttentionMatchesTheTypedCall) {
  const auto q = Ramp(2, 1), k = Ramp(2, 2), v = Ramp(2, 3);
  auto typed = client_->Attention(q, k, v, 0.01);
  ASSERT_TRUE(typed.ok()) << typed.status();
  auto info = client_->Describe("attention");
  ASSERT_TRUE(info.ok()) << info.status();
  auto scale = ParseParameter(*info, "score_scale=0.01");
  ASSERT_TRUE(scale.ok()) << scale.status();
  // Sequences of any length: the tensors' item dims are [-1, 64], so the
  // bytes need their shape.
  auto bytes = [](const std::vector<int8_t>& x) {
    return Tensor{.shape = {2, 64, 64},
                  .data = std::string(x.begin(), x.end())};
  };
  auto generic = client_->Infer(
      "attention", {{"q", bytes(q)}, {"k", bytes(k)}, {"v", bytes(v)}},
      {{scale->first, scale->second}});
  ASSERT_TRUE(generic.ok()) << generic.status();
  EXPECT_EQ(generic->outputs.at("out").data,
            std::string(typed->out.begin(), typed->out.end()));
}

TEST_F(ClientTest, SequenceAttentionIsCloseToFloat) {
  const AttentionShape shape{.n = 3, .lq = 40, .lk = 300};
  const auto q = Gaussian(3 * 40 * 64, 1.5, 13),
             k = Gaussian(3 * 300 * 64, 1.5, 14),
             v = Gaussian(3 * 300 * 64, 1.5, 15);
  auto r = client_->Attention(q, k, v, shape, {.causal = true});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->out.size(), q.size());
  EXPECT_TRUE(r->params.causal);
  const auto ref = FloatAttention(q, k, v, shape, true);
  for (int h = 0; h < 3; ++h) {
    const size_t head = 40 * kTileDim;
    EXPECT_GE(Cosine(absl::MakeConstSpan(r->out).subspan(h * head, head),
                     absl::MakeConstSpan(ref).subspan(h * head, head)),
              0.997);
  }
  // The int8 call with the default parameters is the tile call.
  const auto t = Ramp(2, 4);
  auto seq = client_->Attention(t, t, t, {.n = 2, .lq = 64, .lk = 64});
  auto tiles = client_->Attention(t, t, t);
  ASSERT_TRUE(seq.ok()) << seq.status();
  ASSERT_TRUE(tiles.ok()) << tiles.status();
  EXPECT_EQ(seq->out, tiles->out);
}

TEST(ClientUnreachable, ReportsUnavailable) {
  auto c = Client::Connect(
      {.target = "unix:/nonexistent/npukd.sock", .timeout = absl::Seconds(2)});
  ASSERT_TRUE(c.ok());
  auto h = (*c)->Health();
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace npuk
