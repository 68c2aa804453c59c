#include "client/cpp/log_mel.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

TEST(AudioToInt16, RoundsAndClipsAsDocumented) {
  EXPECT_EQ(AudioToInt16(0.0f), 0);
  EXPECT_EQ(AudioToInt16(1.0f), 32767);
  EXPECT_EQ(AudioToInt16(2.0f), 32767);
  EXPECT_EQ(AudioToInt16(-1.0f), -32768);
  EXPECT_EQ(AudioToInt16(-3.0f), -32768);
  EXPECT_EQ(AudioToInt16(0.5f), 16384);
  EXPECT_EQ(AudioToInt16(1.4f / 32768), 1);
  EXPECT_EQ(AudioToInt16(1.6f / 32768), 2);
}

TEST(LogMelFrames, WhisperDropsTheLastStftFrame) {
  EXPECT_EQ(LogMelFrames(480000), 3000u);  // 30 s clip
  EXPECT_EQ(LogMelFrames(16000), 100u);
  EXPECT_EQ(LogMelFrames(16159), 100u);
  EXPECT_EQ(LogMelFrames(16160), 101u);
}

TEST(FrameAudio, ReflectPadsLikeTorchStftCenter) {
  // Samples i/32768 make the int16 value equal the index.
  const size_t n = 1000;
  std::vector<float> audio(n);
  for (size_t i = 0; i < n; ++i) audio[i] = static_cast<float>(i) / 32768;
  auto frames = FrameAudio(audio);
  ASSERT_TRUE(frames.ok()) << frames.status();
  ASSERT_EQ(frames->size(), LogMelFrames(n) * kMelFrameSamples);
  const auto& f = *frames;
  // Frame 0 is centred on sample 0: padded[k] = x[200 - k] for k < 200.
  EXPECT_EQ(f[0], 200);
  EXPECT_EQ(f[199], 1);
  EXPECT_EQ(f[200], 0);
  EXPECT_EQ(f[399], 199);
  // Frame 1 starts at sample 160 - 200 = -40.
  EXPECT_EQ(f[400], 40);
  EXPECT_EQ(f[440], 0);
  // The last kept frame (5) starts at 600 and runs past the end: x[999]
  // then reflects to x[998].
  const int16_t* last = f.data() + 5 * kMelFrameSamples;
  EXPECT_EQ(last[0], 600);
  EXPECT_EQ(last[399], 999);
}

TEST(FrameAudio, RefusesClipsTooShortToPad) {
  std::vector<float> audio(200, 0.1f);
  auto frames = FrameAudio(audio);
  EXPECT_EQ(frames.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(frames.status().message(), testing::HasSubstr("200 samples"));
}

TEST(NormalizeLogMel, DequantisesClampsAndTransposes) {
  // Two frames; q = 16*(log10 + 4).
  std::vector<int8_t> q(2 * kMelBins, -128);
  q[0] = 64;              // frame 0 bin 0: log10 = 0 (the max)
  q[kMelBins + 1] = -64;  // frame 1 bin 1: log10 = -8, exactly max - 8
  auto x = NormalizeLogMel(q, 2);
  ASSERT_EQ(x.size(), 2 * kMelBins);
  EXPECT_FLOAT_EQ(x[0 * 2 + 0], 1.0f);   // (0 + 4) / 4
  EXPECT_FLOAT_EQ(x[1 * 2 + 1], -1.0f);  // (-8 + 4) / 4
  EXPECT_FLOAT_EQ(x[1 * 2 + 0], -1.0f);  // -12 clamped to -8
  EXPECT_FLOAT_EQ(x[79 * 2 + 1], -1.0f);
}

TEST(LogMelFrames, CountsPaddingLikeWhisper) {
  EXPECT_EQ(LogMelFrames(16000, 0), 100u);
  // transcribe(): 30 s of padding adds 3000 frames.
  EXPECT_EQ(LogMelFrames(16000, kWhisperChunkSamples), 3100u);
  EXPECT_EQ(LogMelFrames(100, 60), 1u);
  EXPECT_EQ(LogMelFrames(100, 59), 0u);
}

int64_t IntParam(const inference::ModelInferRequest& r, const char* name) {
  auto it = r.parameters().find(name);
  return it == r.parameters().end() ? -1 : it->second.int64_param();
}

TEST(LogMelRequest, FloatAudioGoesAsFp32WithParameters) {
  const std::vector<float> audio = {0.0f, 0.25f, -1.0f, 1e-7f, 0.5f};
  auto r = LogMelRequest(audio, {.n_mels = 128, .padding = 480000});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_name(), "log_mel");
  ASSERT_EQ(r->inputs_size(), 1);
  EXPECT_EQ(r->inputs(0).name(), "audio");
  EXPECT_EQ(r->inputs(0).datatype(), "FP32");
  ASSERT_EQ(r->inputs(0).shape_size(), 1);
  EXPECT_EQ(r->inputs(0).shape(0), 5);
  ASSERT_EQ(r->raw_input_contents_size(), 1);
  const std::string& raw = r->raw_input_contents(0);
  ASSERT_EQ(raw.size(), 5 * sizeof(float));
  std::vector<float> back(5);
  std::memcpy(back.data(), raw.data(), raw.size());
  EXPECT_EQ(back, audio);  // the samples themselves, not rounded to int16
  EXPECT_EQ(IntParam(*r, "n_mels"), 128);
  EXPECT_EQ(IntParam(*r, "padding"), 480000);
}

TEST(LogMelRequest, Int16PcmAndS16leBytesGoAsInt16) {
  const std::vector<int16_t> pcm = {0, 1, -32768, 32767};
  auto a = LogMelRequest(absl::Span<const int16_t>(pcm));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->inputs(0).datatype(), "INT16");
  EXPECT_EQ(a->inputs(0).shape(0), 4);
  EXPECT_EQ(IntParam(*a, "n_mels"), 80);
  EXPECT_EQ(IntParam(*a, "padding"), 0);
  // Little-endian s16le bytes of the same samples make the same request.
  const std::string bytes("\x00\x00\x01\x00\x00\x80\xff\x7f", 8);
  auto b = LogMelRequestFromS16le(bytes);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->inputs(0).SerializeAsString(), a->inputs(0).SerializeAsString());
  EXPECT_EQ(b->raw_input_contents(0), a->raw_input_contents(0));
  EXPECT_EQ(IntParam(*b, "n_mels"), 80);
}

TEST(LogMelRequest, BadInputIsRefusedBeforeAnyCall) {
  const std::vector<float> one = {0.1f};
  struct Case {
    absl::StatusOr<inference::ModelInferRequest> got;
    const char* says;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> with_nan = {0.0f, 0.1f, nan, 0.2f, nan};
  std::vector<float> with_inf = {-inf, 0.0f};
  Case cases[] = {
      {LogMelRequest(absl::Span<const float>()), "S = 0"},
      {LogMelRequest(absl::Span<const int16_t>()), "S = 0"},
      {LogMelRequestFromS16le(""), "S = 0"},
      {LogMelRequestFromS16le(std::string(1001, '\0')), "1001 bytes, an odd"},
      {LogMelRequest(with_nan),
       "2 NaN or infinite samples (the first at "
       "index 2"},
      {LogMelRequest(with_inf), "index 0"},
      {LogMelRequest(one, {.n_mels = 64}), "n_mels must be 80 or 128"},
      {LogMelRequest(one, {.n_mels = 64}), "got 64"},
      {LogMelRequest(one, {.n_mels = 0}), "got 0"},
      {LogMelRequest(one, {.padding = -1}), "padding must be >= 0"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.got.status().code(), absl::StatusCode::kInvalidArgument)
        << c.says;
    EXPECT_THAT(c.got.status().message(), testing::HasSubstr(c.says));
  }
}

inference::ModelInferResponse FeaturesResponse(int64_t mels, int64_t frames,
                                               size_t bytes) {
  inference::ModelInferResponse r;
  r.set_model_name("log_mel");
  auto* o = r.add_outputs();
  o->set_name("features");
  o->set_datatype("FP32");
  o->add_shape(mels);
  o->add_shape(frames);
  std::string raw(bytes, '\0');
  for (size_t k = 0; 4 * k + 4 <= bytes; ++k) {
    const float v = static_cast<float>(k) * 0.5f;
    std::memcpy(raw.data() + 4 * k, &v, 4);
  }
  *r.add_raw_output_contents() = raw;
  return r;
}

TEST(LogMelFeatures, ReadsTheFeaturesOutputAndChecksItsSize) {
  auto ok = LogMelFeatures(FeaturesResponse(80, 3, 80 * 3 * 4), 80, 3);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 240u);
  EXPECT_EQ((*ok)[0], 0.0f);
  EXPECT_EQ((*ok)[239], 119.5f);
  auto short_bytes =
      LogMelFeatures(FeaturesResponse(80, 3, 80 * 3 * 4 - 4), 80, 3);
  EXPECT_EQ(short_bytes.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(short_bytes.status().message(),
              testing::HasSubstr("expected FP32 [80, 3]"));
  auto wrong_shape =
      LogMelFeatures(FeaturesResponse(128, 3, 80 * 3 * 4), 80, 3);
  EXPECT_EQ(wrong_shape.status().code(), absl::StatusCode::kInternal);
  inference::ModelInferResponse none;
  none.add_outputs()->set_name("log_mel");
  EXPECT_THAT(LogMelFeatures(none, 80, 3).status().message(),
              testing::HasSubstr("without a `features` output"));
}

TEST(ExplainLogMelError, SaysWhatToDoAboutTheMessageLimit) {
  std::vector<float> audio(16000 * 10, 0.0f);
  auto req = LogMelRequest(audio);
  ASSERT_TRUE(req.ok());
  const absl::Status big = ExplainLogMelError(
      absl::ResourceExhaustedError(
          "Received message larger than max (640123 vs. 4194304)"),
      *req);
  EXPECT_EQ(big.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(big.message(),
              testing::HasSubstr("0.6 MB of FP32 audio, 10.0 s"));
  EXPECT_THAT(big.message(), testing::HasSubstr("max_message_bytes"));
  const absl::Status queue =
      ExplainLogMelError(absl::ResourceExhaustedError("queue full"), *req);
  EXPECT_EQ(queue.message(), "queue full");
  EXPECT_THAT(ExplainLogMelError(absl::NotFoundError("model 'log_mel' is "
                                                     "not served"),
                                 *req)
                  .message(),
              testing::HasSubstr("upgrade"));
}

}  // namespace
}  // namespace npuk
