// A model served by host code around registry kernels rather than by one
// kernel directly (log_mel: Whisper's whole log_mel_spectrogram over the
// internal mel_pcm and mel128_pcm kernels). The rpc layer finds it by name
// like any model, checks draining and readiness, and hands the request
// over; the model validates it, runs it through the kernels' batchers and
// answers it exactly once.
#ifndef NPUK_SERVER_MODELS_HOST_MODEL_H_
#define NPUK_SERVER_MODELS_HOST_MODEL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpc_service.pb.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk {

class HostModel {
 public:
  virtual ~HostModel() = default;

  // Names the model (KernelSpec::name) for lookups, readiness, statistics
  // and metrics; its other fields are not used (it runs no kernel itself).
  virtual const KernelSpec& descriptor() const = 0;
  // The registry kernels it runs on: it is SERVING while they all are.
  virtual std::vector<std::string> kernels() const = 0;
  // Requests waiting in the kernels' queues (for the pending metric).
  virtual size_t pending() const = 0;

  // False when the request is for the served kernel itself (ServedModel's
  // spec and batcher), which then takes it as any kernel model would: the
  // attention model leaves plain [N, 64, 64] tile requests to its tile
  // kernel. Must not depend on anything but the request.
  virtual bool TakesRequest(const inference::ModelInferRequest&) const {
    return true;
  }

  // Validates, runs and answers one request: `finish` is called exactly
  // once (synchronously when the request is refused). `request` and
  // `response` stay valid until then.
  virtual void Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response,
                     absl::Time deadline,
                     std::shared_ptr<std::atomic<bool>> cancelled,
                     absl::AnyInvocable<void(absl::Status) &&> finish) = 0;

  virtual void Metadata(inference::ModelMetadataResponse* response) const = 0;
  virtual void Config(inference::ModelConfig* config) const = 0;
};

// The outputs a request asks a host model with one output, `output`, for:
// that one only, without parameters (shared memory is resolved before the
// model sees the request). INVALID_ARGUMENT, prefixed "<model>: ".
inline absl::Status CheckRequestedOutputs(
    const inference::ModelInferRequest& request, absl::string_view model,
    absl::string_view output) {
  for (const auto& out : request.outputs()) {
    if (out.name() != output) {
      return absl::InvalidArgumentError(
          absl::StrCat(model, ": unknown output '", out.name().substr(0, 64),
                       "'; ", model, " has one output, '", output, "'"));
    }
    if (!out.parameters().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(model,
                       ": output parameters other than shared memory are not "
                       "supported by ",
                       model, "; '", output, "' comes in raw_output_contents"));
    }
  }
  return absl::OkStatus();
}

}  // namespace npuk

#endif  // NPUK_SERVER_MODELS_HOST_MODEL_H_
