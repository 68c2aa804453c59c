// Validation of a ModelInferRequest against a kernel's declaration
// (kernels/registry/kernel_spec.h), and the mapping of its tensors and
// parameters onto the planes the batcher gathers into device arguments.
// Everything here is pure: no gRPC server state, no device.
#ifndef NPUK_SERVER_RPC_TENSOR_MAPPING_H_
#define NPUK_SERVER_RPC_TENSOR_MAPPING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpc_service.pb.h"
#include "kernels/registry/kernel_spec.h"
#include "server/shm/shm_registry.h"

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
  // System shared memory (Triton's extension). Inputs that name a region
  // are copied out of it into `owned` by MapRequest. When the output asks
  // for a region, `output_region` is that range: PrepareResponse points the
  // run at `output_staging` and WriteSharedMemoryOutput copies the result
  // into the region (the response then carries no bytes for the output).
  shm::RegionView output_region;
  std::vector<uint8_t> output_staging;
};

// A request parameter read as the declared type (a double parameter also
// takes an int64_param); INVALID_ARGUMENT naming it otherwise. For host
// models (server/models) that read their own parameters.
absl::StatusOr<ParamValue> ReadParameter(const ParamDecl& decl,
                                         const inference::InferParameter& p);

// Typed contents of input `in` (declared as `t`) as the tensor type's
// little-endian bytes: int_contents for the integer types, range-checked,
// fp32_contents for FP32; `elements` values expected.
absl::StatusOr<std::vector<uint8_t>> TypedToBytes(
    const TensorDecl& t,
    const inference::ModelInferRequest::InferInputTensor& in, size_t elements);

// Checks every field the server reads and returns the request's tensors
// and parameters as planes. Errors are INVALID_ARGUMENT (and NOT_FOUND for
// an unknown model version) with a message naming the offending field and
// the expected value. `max_items` bounds N. The request must outlive the
// result. Tensors with shared_memory_region/_offset/_byte_size parameters
// are resolved in `shm`; without a registry they are refused with a
// message saying shared memory is not served on this path.
absl::StatusOr<MappedRequest> MapRequest(
    const KernelSpec& spec, const inference::ModelInferRequest& request,
    size_t max_items, const shm::SharedMemoryRegistry* shm = nullptr);

// Fills model_name, model_version, id and the output tensor of `response`
// for `items` items and returns where the output bytes go (inside
// raw_output_contents(0), sized items * spec.output_bytes(); or, when
// `mapped` has an output_region, mapped->output_staging and no
// raw_output_contents).
uint8_t* PrepareResponse(const KernelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items, inference::ModelInferResponse* response,
                         MappedRequest* mapped = nullptr);

// Host models (server/models, e.g. log_mel) read raw_input_contents and
// fill raw_output_contents themselves. For them a request with tensors in
// shared memory is rewritten: inputs copied out of their regions into
// raw_input_contents, outputs asked for in plain form; afterwards
// DeliverSharedMemoryOutputs moves those outputs into their regions.
struct SharedMemoryRewrite {
  inference::ModelInferRequest request;  // what the host model sees
  struct Output {
    std::string name;
    shm::RegionView region;
    inference::InferParameter region_name;  // echoed in the response
    std::optional<inference::InferParameter> offset;
  };
  std::vector<Output> outputs;
};

// True when any input or requested output has shared_memory_* parameters.
bool UsesSharedMemory(const inference::ModelInferRequest& request);

absl::StatusOr<std::unique_ptr<SharedMemoryRewrite>> RewriteSharedMemory(
    const inference::ModelInferRequest& request,
    const shm::SharedMemoryRegistry* shm);

// INVALID_ARGUMENT when an output is larger than its range or the region's
// object was truncated.
absl::Status DeliverSharedMemoryOutputs(
    const SharedMemoryRewrite& rewrite,
    inference::ModelInferResponse* response);

// After a successful run: copies the output into its shared-memory region
// when the request asked for one (no-op otherwise). INVALID_ARGUMENT when
// the client truncated the object meanwhile.
absl::Status WriteSharedMemoryOutput(const KernelSpec& spec,
                                     const MappedRequest& mapped);

}  // namespace npuk

#endif  // NPUK_SERVER_RPC_TENSOR_MAPPING_H_
