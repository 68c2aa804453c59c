// npuk::Client against a real npukd on a temporary unix socket.
#include "client/cpp/client.h"

#include <atomic>
#include <cmath>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "client/cpp/log_mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

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
  auto bytes = [](const std::vector<int8_t>& x) {
    return Tensor{.data = std::string(x.begin(), x.end())};
  };
  auto generic = client_->Infer(
      "attention", {{"q", bytes(q)}, {"k", bytes(k)}, {"v", bytes(v)}},
      {{scale->first, scale->second}});
  ASSERT_TRUE(generic.ok()) << generic.status();
  EXPECT_EQ(generic->outputs.at("out").data,
            std::string(typed->out.begin(), typed->out.end()));
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
