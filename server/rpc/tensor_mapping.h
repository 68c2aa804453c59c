// Validation of a ModelInferRequest against a model's spec, and the mapping
// of its tensors onto the planar inputs the batcher gathers into device
// layout. Everything here is pure: no gRPC server state, no device.
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
#include "kernels/common/score_scale.h"
#include "server/rpc/model_spec.h"

namespace npuk {

struct MappedRequest {
  size_t items = 0;
  // One span per spec input, in spec order; they point into the request's
  // raw_input_contents or into `owned` (typed contents converted to bytes).
  std::vector<absl::Span<const uint8_t>> planes;
  std::vector<std::vector<uint8_t>> owned;
  double score_scale = kDefaultScoreScale;
  ScoreScale scale{};
  // Triton's "timeout" parameter: how long the request may wait in the queue.
  std::optional<absl::Duration> queue_timeout;
};

// Checks every field the server reads and returns the request's tensors as
// planes. Errors are INVALID_ARGUMENT (and NOT_FOUND for an unknown model
// version or output) with a message naming the offending field and the
// expected value. `max_items` bounds N. The request must outlive the result.
absl::StatusOr<MappedRequest> MapRequest(
    const ModelSpec& spec, const inference::ModelInferRequest& request,
    size_t max_items);

// Fills model_name, model_version, id and the output tensor of `response`
// for `items` items and returns where the output bytes go (inside
// raw_output_contents(0), sized items * output bytes).
uint8_t* PrepareResponse(const ModelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items, inference::ModelInferResponse* response);

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_TENSOR_MAPPING_H_
