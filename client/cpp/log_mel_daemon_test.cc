// Client::LogMelSpectrogram against a real npukd: the `log_mel` model from
// raw PCM, 80 and 128 bands, padding, both wire types, and bad input through
// the client (refused locally) and past it (the daemon's own errors).
// Parity with openai/whisper itself is tests/whisper/.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "client/cpp/client.h"
#include "client/cpp/log_mel.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

std::vector<float> Tone(size_t samples, double hz, double amplitude) {
  std::vector<float> x(samples);
  for (size_t i = 0; i < samples; ++i) {
    x[i] = static_cast<float>(amplitude *
                              std::sin(2 * M_PI * hz * i / kSampleRate));
  }
  return x;
}

class LogMelDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::DaemonProcess({"--backend=cpu"});
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

testing::DaemonProcess* LogMelDaemonTest::daemon_ = nullptr;

// The band with the most energy in the middle frame.
size_t LoudestBand(const LogMelResult& r) {
  const size_t mid = r.frames / 2;
  size_t best = 0;
  for (size_t b = 1; b < static_cast<size_t>(r.n_mels); ++b) {
    if (r.features[b * r.frames + mid] > r.features[best * r.frames + mid]) {
      best = b;
    }
  }
  return best;
}

TEST_F(LogMelDaemonTest, ToneLandsInItsBandFor80And128Bands) {
  const auto audio = Tone(kSampleRate, 1000.0, 0.5);
  auto r80 = client_->LogMelSpectrogram(audio);
  ASSERT_TRUE(r80.ok()) << r80.status();
  EXPECT_EQ(r80->n_mels, 80);
  ASSERT_EQ(r80->frames, 100u);
  ASSERT_EQ(r80->features.size(), 80u * 100);
  // Slaney scale: 1 kHz is mel 15 of 45.25 at 8 kHz; band centres are
  // evenly spaced over n_mels + 1 steps, so the band is ~15/45.25*81 - 1.
  EXPECT_NEAR(static_cast<double>(LoudestBand(*r80)), 26.0, 1.0);
  const auto [lo, hi] =
      std::minmax_element(r80->features.begin(), r80->features.end());
  // Clamped to max - 8 (log10), i.e. 2 in Whisper's units; the daemon's
  // values are on a 1/64 grid (q/16 in log10) and its floor is exact.
  EXPECT_NEAR(*hi - *lo, 2.0f, 1.0f / 64);
  EXPECT_EQ(r80->timing.backend, "cpu");

  auto r128 = client_->LogMelSpectrogram(audio, {.n_mels = 128});
  ASSERT_TRUE(r128.ok()) << r128.status();
  EXPECT_EQ(r128->n_mels, 128);
  ASSERT_EQ(r128->features.size(), 128u * 100);
  EXPECT_NEAR(static_cast<double>(LoudestBand(*r128)), 15.0 / 45.25 * 129 - 1,
              1.0);
}

TEST_F(LogMelDaemonTest, TranscribesPaddingAddsThirtySecondsOfFrames) {
  const auto audio = Tone(kSampleRate, 440.0, 0.3);
  auto r = client_->LogMelSpectrogram(
      audio, {.n_mels = 80, .padding = kWhisperChunkSamples});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->frames, 3100u);  // over the framed mel model's 3072 limit
  ASSERT_EQ(r->features.size(), 80u * 3100);
  // The padded tail is silence: clamped to the floor (max - 2 in Whisper's
  // units, within the 1/64 grid of the daemon's values) in every band.
  const auto [lo, hi] =
      std::minmax_element(r->features.begin(), r->features.end());
  EXPECT_NEAR(*hi - *lo, 2.0f, 1.0f / 64);
  for (size_t b = 0; b < 80; ++b) {
    EXPECT_EQ(r->features[b * 3100 + 3050], *lo) << b;
  }
}

TEST_F(LogMelDaemonTest, Int16AndFloatOfTheSameSamplesAgree) {
  std::vector<int16_t> pcm(8000);
  std::vector<float> audio(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] = static_cast<int16_t>(std::lrint(9000 * std::sin(0.07 * i) +
                                             3000 * std::sin(0.31 * i + 1.0)));
    audio[i] = pcm[i] / 32768.0f;
  }
  auto a = client_->LogMelSpectrogram(absl::Span<const int16_t>(pcm));
  auto b = client_->LogMelSpectrogram(absl::Span<const float>(audio));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->features.size(), b->features.size());
  float worst = 0;
  for (size_t i = 0; i < a->features.size(); ++i) {
    worst = std::max(worst, std::abs(a->features[i] - b->features[i]));
  }
  EXPECT_LE(worst, 1e-6f);
  // A request built from s16le bytes is the same request.
  std::string bytes(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
  auto req = LogMelRequestFromS16le(bytes);
  ASSERT_TRUE(req.ok()) << req.status();
  auto c = client_->LogMelSpectrogram(*req);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->features, a->features);
}

TEST_F(LogMelDaemonTest, BadInputIsRefusedByTheClientWithTheReason) {
  const std::vector<float> ok = Tone(1600, 300.0, 0.1);
  std::vector<float> nan = ok;
  nan[700] = std::numeric_limits<float>::quiet_NaN();
  const auto empty = client_->LogMelSpectrogram(absl::Span<const float>());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("S = 0"));
  const auto bands = client_->LogMelSpectrogram(ok, {.n_mels = 40});
  EXPECT_EQ(bands.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bands.status().message(), HasSubstr("80 or 128"));
  const auto bad = client_->LogMelSpectrogram(nan);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("index 700"));
  const auto odd = LogMelRequestFromS16le(std::string(33, '\1'));
  EXPECT_THAT(odd.status().message(), HasSubstr("33 bytes, an odd count"));
}

// What a client that skips those checks gets from the daemon itself.
TEST_F(LogMelDaemonTest, TheDaemonRefusesWhatTheClientWouldHave) {
  auto base = LogMelRequest(Tone(1600, 300.0, 0.1));
  ASSERT_TRUE(base.ok());
  struct Case {
    const char* what;
    inference::ModelInferRequest req;
  };
  std::vector<Case> cases;
  {
    Case c{"odd byte count", *base};
    c.req.mutable_inputs(0)->set_datatype("INT16");
    c.req.mutable_inputs(0)->set_shape(0, 1);
    *c.req.mutable_raw_input_contents(0) = std::string(3, '\0');
    cases.push_back(c);
  }
  {
    Case c{"S = 0", *base};
    c.req.mutable_inputs(0)->set_shape(0, 0);
    c.req.mutable_raw_input_contents(0)->clear();
    cases.push_back(c);
  }
  {
    Case c{"n_mels 64", *base};
    (*c.req.mutable_parameters())["n_mels"].set_int64_param(64);
    cases.push_back(c);
  }
  {
    Case c{"NaN sample", *base};
    const float nan = std::numeric_limits<float>::quiet_NaN();
    c.req.mutable_raw_input_contents(0)->replace(
        400, 4, reinterpret_cast<const char*>(&nan), 4);
    cases.push_back(c);
  }
  {
    Case c{"infinite sample", *base};
    const float inf = -std::numeric_limits<float>::infinity();
    c.req.mutable_raw_input_contents(0)->replace(
        0, 4, reinterpret_cast<const char*>(&inf), 4);
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    auto r = client_->Infer(c.req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what << ": " << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("log_mel")) << c.what;
  }
  // The daemon still answers well-formed requests afterwards.
  auto fine = client_->LogMelSpectrogram(*base);
  EXPECT_TRUE(fine.ok()) << fine.status();
}

TEST(LogMelMessageLimit, OverTheLimitSaysWhatToDo) {
  char dir[] = "/tmp/npuk-logmel-limit-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string conf = std::string(dir) + "/npukd.conf";
  {
    std::ofstream f(conf);
    f << "backend: \"cpu\"\nmax_message_bytes: 1000000\n";
  }
  testing::DaemonProcess daemon({"--config=" + conf});
  // The limit is on gRPC messages: through shared memory the audio is no
  // message at all, so this client sends it inline.
  Client::Options options{.target = daemon.target()};
  options.shared_memory = false;
  auto c = Client::Connect(options);
  ASSERT_TRUE(c.ok()) << c.status();
  // 20 s of float audio is 1.28 MB, over the 1 MB limit; as int16 it fits.
  const auto audio = Tone(20 * kSampleRate, 500.0, 0.2);
  auto big = (*c)->LogMelSpectrogram(audio);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted)
      << big.status();
  EXPECT_THAT(big.status().message(), HasSubstr("max_message_bytes"));
  EXPECT_THAT(big.status().message(), HasSubstr("1.3 MB of FP32 audio"));
  std::vector<int16_t> pcm(audio.size());
  std::transform(audio.begin(), audio.end(), pcm.begin(), AudioToInt16);
  auto small = (*c)->LogMelSpectrogram(absl::Span<const int16_t>(pcm));
  EXPECT_TRUE(small.ok()) << small.status();
  std::remove(conf.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace npuk
