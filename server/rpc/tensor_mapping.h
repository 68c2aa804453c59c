// Validation of a ModelInferRequest against a kernel's declaration
// (kernels/registry/kernel_spec.h), and the mapping of its tensors and
// parameters onto the planes the batcher gathers into device arguments.
// Everything here is pure: no gRPC server state, no device.
#ifndef NPUK_SERVER_RPC_TENSOR_MAPPING_H_
#define NPUK_SERVER_RPC_TENSOR_MAPPING_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc_service.pb.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk {

struct MappedRequest {
  size_t items = 0;
  // spec.plane_count() spans: one per spec input, in spec order, then the
  // parameter plane when spec.param_bytes > 0. Tensor planes point into the
  // request's raw_input_contents or into `owned` (typed contents converted
  // to bytes); the parameter plane points into `params_plane`. Moving a
  // MappedRequest keeps every span valid (the buffers move with it).
  std::vector<absl::Span<const uint8_t>> planes;
  std::vector<std::vector<uint8_t>> owned;
  // The encoded parameter record, repeated `items` times (empty when the
  // kernel takes no parameters).
  std::vector<uint8_t> params_plane;
  // One value per spec.params, in that order, defaults filled in.
  std::vector<ParamValue> params;
  // Triton's "timeout" parameter: how long the request may wait in the queue.
  std::optional<absl::Duration> queue_timeout;
};

// Checks every field the server reads and returns the request's tensors
// and parameters as planes. Errors are INVALID_ARGUMENT (and NOT_FOUND for
// an unknown model version) with a message naming the offending field and
// the expected value. `max_items` bounds N. The request must outlive the
// result.
absl::StatusOr<MappedRequest> MapRequest(
    const KernelSpec& spec, const inference::ModelInferRequest& request,
    size_t max_items);

// Fills model_name, model_version, id and the output tensor of `response`
// for `items` items and returns where the output bytes go (inside
// raw_output_contents(0), sized items * spec.output_bytes()).
uint8_t* PrepareResponse(const KernelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items, inference::ModelInferResponse* response);

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_TENSOR_MAPPING_H_
