// The log_mel model: OpenAI Whisper's log_mel_spectrogram(audio, n_mels,
// padding) for any KServe v2 client (docs/LOG_MEL.md).
//
//   input  audio     FP32 [S] (full scale 1.0) or INT16 [S], 16 kHz mono
//   params n_mels    int64, 80 (default) or 128
//          padding   int64 >= 0, trailing zero samples (Whisper's argument)
//   output features  FP32 [n_mels, (S + padding) / 160]
//
// The host reflects and scales the PCM (log_mel_math.h) and submits it, in
// pieces of at most the kernel's max_batch_frames frames, to the batcher of
// the internal kernel mel_pcm (80 bands) or mel128_pcm (128): frames of
// different requests share device runs, and one request may span several.
// When every piece is back it finishes Whisper's formula over the whole
// request and answers once.
#ifndef NPUK_SERVER_MODELS_LOG_MEL_H_
#define NPUK_SERVER_MODELS_LOG_MEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/batching/batcher.h"
#include "server/models/host_model.h"
#include "server/telemetry/model_stats.h"

namespace npuk {

struct LogMelOptions {
  std::string backend;  // for the response's "backend" and the platform
  // The gRPC message limit: a request whose features would not fit in a
  // response is refused (RESOURCE_EXHAUSTED) before it runs.
  size_t max_message_bytes = 64 << 20;
  uint32_t instances = 1;  // executors per kernel, for ModelConfig
};

class LogMelModel final : public HostModel {
 public:
  // mel80 / mel128: the batchers of kernels mel_pcm / mel128_pcm, or
  // nullptr when that kernel is disabled (then that n_mels is refused).
  // `stats` is the observer of both batchers, so it counts their runs and
  // frames; the model adds requests and latencies. None are owned.
  LogMelModel(LogMelOptions options, Batcher* mel80, Batcher* mel128,
              ModelStats* stats);

  // The model's name and summary (not a registry kernel).
  static const KernelSpec& Descriptor();

  const KernelSpec& descriptor() const override { return Descriptor(); }
  std::vector<std::string> kernels() const override;
  size_t pending() const override;
  void Infer(const inference::ModelInferRequest& request,
             inference::ModelInferResponse* response, absl::Time deadline,
             std::shared_ptr<std::atomic<bool>> cancelled,
             absl::AnyInvocable<void(absl::Status) &&> finish) override;
  void Metadata(inference::ModelMetadataResponse* response) const override;
  void Config(inference::ModelConfig* config) const override;

 private:
  const LogMelOptions options_;
  Batcher* const mel80_;
  Batcher* const mel128_;
  ModelStats* const stats_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_MODELS_LOG_MEL_H_
