// npuk::Client: the C++ way to call npukd. One Client wraps one gRPC channel
// and may be shared by any number of threads; every method is thread-safe.
//
//   auto client = npuk::Client::Connect({});          // default socket
//   auto mel = (*client)->Mel(frames);                // int16 [N, 400]
//   if (!mel.ok()) LOG(ERROR) << mel.status();        // server's message
//   use(mel->log_mel, mel->timing.compute);     // int8 [N, 80]
//
// Any model, from what the daemon says about it (model_info.h):
//
//   auto r = (*client)->Infer("passthrough", {{"in", {.data = bytes}}});
//   use(r->outputs.at("out").data, r->outputs.at("out").shape);
//
// Mel, Attention and LogMelSpectrogram are typed conveniences over one
// kernel each; everything else works for every model the daemon serves.
//
// Errors are absl::Status with the gRPC code and the server's message
// (INVALID_ARGUMENT bad input, NOT_FOUND unknown model, RESOURCE_EXHAUSTED
// queue full, UNAVAILABLE daemon down or draining, DEADLINE_EXCEEDED,
// CANCELLED).
#ifndef NPUK_CLIENT_CPP_CLIENT_H_
#define NPUK_CLIENT_CPP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/cpp/log_mel.h"
#include "client/cpp/model_info.h"
#include "client/cpp/shm_transport.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "health.grpc.pb.h"

namespace npuk {

// What the daemon reported about one inference (response `parameters`), plus
// the round trip the client measured.
struct Timing {
  absl::Duration queue;       // waiting for a batch to start
  absl::Duration compute;     // the device run the request rode in
  absl::Duration server;      // request received -> response ready
  int64_t batch_frames = 0;   // frames (tiles) in that device run
  std::string backend;        // cpu, npu-sim or xrt
  absl::Duration round_trip;  // measured by the client
};

// Reads the timing parameters of a response; absent ones stay zero.
Timing TimingOf(const inference::ModelInferResponse& response);

// Cancels the calls that were given it, from any thread. A call started after
// Cancel() fails at once with CANCELLED. Must outlive those calls.
class Cancellation {
 public:
  void Cancel();
  bool cancelled() const;

 private:
  friend class Client;
  // False when already cancelled (the call must not start).
  bool Attach(grpc::ClientContext* ctx);
  void Detach(grpc::ClientContext* ctx);

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

struct CallOptions {
  // Absolute deadline; InfiniteFuture() means Client::Options::timeout.
  absl::Time deadline = absl::InfiniteFuture();
  // Not owned; may be null.
  Cancellation* cancellation = nullptr;
};

struct MelResult {
  std::vector<int8_t> log_mel;  // [frames, 80], log10 P ~= q/16 - 4
  size_t frames = 0;
  Timing timing;
};

// The `attention` model over whole sequences (issue 15): q int8 [n, lq, 64],
// k and v int8 [n, lk, 64] row-major, out int8 [n, lq, 64];
// n = batch x heads, 1 <= lq, lk <= kAttentionMaxTokens.
inline constexpr int64_t kAttentionMaxTokens = 4096;
struct AttentionShape {
  int64_t n = 0;
  int64_t lq = 0;
  int64_t lk = 0;
};

// out = sat8(round(softmax(q k^T * score_scale) v / output_scale)). The
// daemon checks the ranges; output_scale and causal are sent only when not
// the defaults, so a [n, 64, 64] call with them is the tile request
// daemons from before sequence attention take.
struct AttentionParams {
  double score_scale = 0.125;  // [2^-16, 4]; s_q * s_k / 8 for float Q, K
  double output_scale = 1.0;   // [2^-16, 2^16]
  bool causal = false;         // query i sees keys j <= i + lk - lq
};

struct AttentionResult {
  std::vector<int8_t> out;  // [tiles, 64, 64]; [n, lq, 64] for sequences
  size_t tiles = 0;         // n (batch x heads)
  Timing timing;
  AttentionShape shape;
};

// Float attention through the int8 model, as the Python client's
// Client.attention: q, k, v quantised per tensor (QuantizePerTensor),
// score_scale = s_q s_k / 8 (coarser q and k grids that make it 2^-16 when
// it would be below; above 4 is refused), out * s_v * output_scale back.
struct FloatAttentionOptions {
  bool causal = false;
  // Unset: ChooseOutputScale. Set: sent as is, in [2^-16, 2^16].
  std::optional<double> output_scale;
};

// A float attention as sent: the int8 request, its parameters and the
// factor that turns the int8 answer into floats.
struct QuantizedAttention {
  inference::ModelInferRequest request;
  AttentionParams params;
  double out_unit = 1.0;  // float out = int8 out * out_unit
};

struct FloatAttentionResult {
  std::vector<float> out;  // [n, lq, 64] row-major
  AttentionShape shape;
  AttentionParams params;  // as sent
  Timing timing;
};

// Per-tensor symmetric int8: x ~= scale * values, scale = max|x| / 127
// (1 for an all-zero tensor) unless given, values = clamp(round(x /
// scale), -127, 127) with float division and round-half-even, the bytes
// of the Python client's npuk.quantize.
struct QuantizedTensor {
  std::vector<int8_t> values;
  double scale = 1.0;
};
QuantizedTensor QuantizePerTensor(absl::Span<const float> x,
                                  std::optional<double> scale = std::nullopt);

// The output scale of a float attention when none is given: each output
// row mixes rows of v, so |out| <= max|v| and 1 never saturates; long rows
// average and come out small. With P the peak of the float result
// estimated by exact float softmax on sampled query rows (at most 64 a
// head, evenly spaced; under causal half of them geometrically spaced from
// row 0, which sees the fewest keys; every row when a head has at most 64;
// fewer rows, then fewer heads, beyond 2^22 scores), it is
// min(1, 1.1 P / max|v|) clamped to [2^-16, 1]. Rows outside the sample
// may peak higher; their few largest values then saturate. `q`, `k`, `v`
// must have the sizes of `shape` (CheckAttentionShape).
double ChooseOutputScale(absl::Span<const float> q, absl::Span<const float> k,
                         absl::Span<const float> v, const AttentionShape& shape,
                         bool causal);

// INVALID_ARGUMENT, saying what to send instead, unless the spans have the
// sizes of `shape` and the shape is within the model's contract.
absl::Status CheckAttentionShape(const AttentionShape& shape, size_t q_size,
                                 size_t k_size, size_t v_size, bool causal);

struct LogMelResult {
  std::vector<float> features;  // [n_mels, frames], mel-major like Whisper
  size_t frames = 0;
  int n_mels = 80;
  Timing timing;
};

struct InferResult {
  inference::ModelInferResponse response;
  Timing timing;
};

struct TensorsResult {
  Tensors outputs;  // by output name, sizes checked
  Timing timing;
};

using HealthStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

class Client {
 public:
  struct Options {
    // unix:PATH or HOST:PORT; empty means DefaultTarget() (target.h).
    std::string target;
    // Deadline for calls that set none; InfiniteDuration() for none.
    absl::Duration timeout = absl::Seconds(30);
    // Null means plaintext (the default for unix sockets and loopback).
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    // System shared memory for Infer/Mel/Attention/LogMelSpectrogram
    // (shm_transport.h): unset means on when the target is a unix socket or
    // loopback and $NPUK_SHM is not 0; it falls back to plain gRPC when the
    // daemon cannot use it. The asynchronous calls use it too.
    std::optional<bool> shared_memory;
  };

  // Creates the channel; it connects lazily, so an absent daemon shows up as
  // UNAVAILABLE on the first call. Fails only on a malformed target.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const Options& options);
  // Over an existing channel (tests, custom channel arguments).
  Client(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout);

  // `frames` is int16 [N, 400] row-major, N = frames.size() / 400.
  absl::StatusOr<MelResult> Mel(absl::Span<const int16_t> frames,
                                const CallOptions& call = {});
  // q, k, v are int8 [N, 64, 64]; out = softmax(q k^T * score_scale) v.
  absl::StatusOr<AttentionResult> Attention(absl::Span<const int8_t> q,
                                            absl::Span<const int8_t> k,
                                            absl::Span<const int8_t> v,
                                            double score_scale = 0.125,
                                            const CallOptions& call = {});
  // Sequences: q int8 [n, lq, 64], k and v int8 [n, lk, 64] (AttentionShape,
  // AttentionParams); out int8 [n, lq, 64]. Shapes are checked before any
  // call (CheckAttentionShape), the scales by the daemon.
  absl::StatusOr<AttentionResult> Attention(absl::Span<const int8_t> q,
                                            absl::Span<const int8_t> k,
                                            absl::Span<const int8_t> v,
                                            const AttentionShape& shape,
                                            const AttentionParams& params = {},
                                            const CallOptions& call = {});
  // softmax(Q K^T / 8) V of float q [n, lq, 64], k and v [n, lk, 64]
  // through the int8 model (FloatAttentionOptions, ChooseOutputScale).
  absl::StatusOr<FloatAttentionResult> Attention(
      absl::Span<const float> q, absl::Span<const float> k,
      absl::Span<const float> v, const AttentionShape& shape,
      const FloatAttentionOptions& options = {}, const CallOptions& call = {});
  // whisper.audio.log_mel_spectrogram(audio, n_mels, padding) of 16 kHz mono
  // audio (float, full scale 1.0, sent as FP32; or int16 PCM, sent as INT16)
  // in one `log_mel` request of any length up to the daemon's message limit.
  // Bad input fails with INVALID_ARGUMENT before any call (log_mel.h).
  absl::StatusOr<LogMelResult> LogMelSpectrogram(
      absl::Span<const float> audio, const LogMelOptions& options = {},
      const CallOptions& call = {});
  absl::StatusOr<LogMelResult> LogMelSpectrogram(
      absl::Span<const int16_t> pcm, const LogMelOptions& options = {},
      const CallOptions& call = {});
  // Sends a request made by LogMelRequest*() (log_mel.h).
  absl::StatusOr<LogMelResult> LogMelSpectrogram(
      const inference::ModelInferRequest& request,
      const CallOptions& call = {});
  absl::StatusOr<InferResult> Infer(const inference::ModelInferRequest& request,
                                    const CallOptions& call = {});
  // Any model: `inputs` by name (datatype and shape default from the
  // model's metadata, see Tensor), `params` as the model declares them.
  // Local checks (BuildRequest) fail with INVALID_ARGUMENT before any call.
  absl::StatusOr<TensorsResult> Infer(absl::string_view model,
                                      const Tensors& inputs,
                                      const Parameters& params = {},
                                      const CallOptions& call = {});

  // The models the daemon serves, with their state (RepositoryIndex).
  absl::StatusOr<inference::RepositoryIndexResponse> Repository(
      const CallOptions& call = {});
  // ModelMetadata and ModelConfig of `model`, read once per Client and
  // cached: a running daemon's models keep their tensors and parameters.
  absl::StatusOr<ModelInfo> Describe(absl::string_view model,
                                     const CallOptions& call = {});

  // grpc.health.v1 Check; "" is the whole server, else a model name.
  absl::StatusOr<HealthStatus> Health(absl::string_view service = "",
                                      const CallOptions& call = {});
  // Triton ModelStatistics; "" means every model.
  absl::StatusOr<inference::ModelStatisticsResponse> Statistics(
      absl::string_view model = "", const CallOptions& call = {});

  // Asynchronous calls. `done` runs exactly once on a gRPC thread (or inline
  // when the call cannot start); it must not block. `request` and the spans
  // are copied before the call returns. The Client (and a Cancellation
  // given in `call`) must outlive the call until `done` has run. With shared
  // memory on, a call that needs a new region registers it (one local RPC,
  // bounded by Options::timeout) before it returns; later calls reuse it.
  using InferCallback = absl::AnyInvocable<void(absl::StatusOr<InferResult>)>;
  void InferAsync(const inference::ModelInferRequest& request,
                  const CallOptions& call, InferCallback done);
  void MelAsync(absl::Span<const int16_t> frames, const CallOptions& call,
                absl::AnyInvocable<void(absl::StatusOr<MelResult>)> done);
  void AttentionAsync(
      absl::Span<const int8_t> q, absl::Span<const int8_t> k,
      absl::Span<const int8_t> v, double score_scale, const CallOptions& call,
      absl::AnyInvocable<void(absl::StatusOr<AttentionResult>)> done);

  // Request builders, public so load generators send exactly what Mel() and
  // Attention() send. INVALID_ARGUMENT when sizes are not whole frames/tiles
  // or do not match the AttentionShape.
  static absl::StatusOr<inference::ModelInferRequest> MelRequest(
      absl::Span<const int16_t> frames);
  static absl::StatusOr<inference::ModelInferRequest> AttentionRequest(
      absl::Span<const int8_t> q, absl::Span<const int8_t> k,
      absl::Span<const int8_t> v, double score_scale);
  static absl::StatusOr<inference::ModelInferRequest> AttentionRequest(
      absl::Span<const int8_t> q, absl::Span<const int8_t> k,
      absl::Span<const int8_t> v, const AttentionShape& shape,
      const AttentionParams& params);
  static absl::StatusOr<QuantizedAttention> AttentionRequest(
      absl::Span<const float> q, absl::Span<const float> k,
      absl::Span<const float> v, const AttentionShape& shape,
      const FloatAttentionOptions& options);

  inference::GRPCInferenceService::Stub& inference() { return *inference_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // Sends inferences (synchronous and asynchronous) through system shared
  // memory from now on (Connect does this per Options::shared_memory). Not
  // thread-safe: call before sharing the Client.
  void EnableSharedMemory();
  // Null when shared memory is off.
  const ShmTransport* shared_memory() const { return shm_.get(); }

 private:
  struct AsyncCall;
  // Applies the deadline; returns false when `call` is already cancelled.
  bool Prepare(grpc::ClientContext* ctx, const CallOptions& call) const;

  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration timeout_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> inference_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::unique_ptr<ShmTransport> shm_;  // after inference_: uses it

  absl::Mutex mu_;
  std::map<std::string, ModelInfo, std::less<>> described_ ABSL_GUARDED_BY(mu_);
};

// Maps a gRPC status to absl::Status, keeping code and message.
absl::Status FromGrpc(const grpc::Status& status);

// A channel to `target` (unix:PATH or HOST:PORT, "" = default) with no
// message size limit. Null credentials mean plaintext.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    absl::string_view target,
    std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_CLIENT_H_
