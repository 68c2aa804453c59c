// libFuzzer harness: request validation and tensor mapping. The input is a
// serialized ModelInferRequest (what the gRPC edge hands the service); it is
// mapped against every registered kernel. MapRequest must never crash, and when
// it accepts a request the planes must describe exactly the bytes the batcher
// will read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "grpc_service.pb.h"
#include "kernels/registry/registry.h"
#include "server/rpc/tensor_mapping.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  for (const npuk::KernelSpec* kernel : npuk::AllKernels()) {
    const npuk::KernelSpec& spec = *kernel;
    constexpr size_t kMaxItems = 64;
    absl::StatusOr<npuk::MappedRequest> mapped =
        npuk::MapRequest(spec, request, kMaxItems);
    if (!mapped.ok()) {
      // Every refusal names what is wrong.
      Check(!mapped.status().message().empty());
      continue;
    }
    Check(mapped->items >= 1 && mapped->items <= kMaxItems);
    // Exactly the planes the batcher checks and gathers.
    Check(mapped->planes.size() == spec.plane_count());
    for (size_t i = 0; i < spec.plane_count(); ++i) {
      Check(mapped->planes[i].size() == mapped->items * spec.plane_bytes(i));
      // Touch every byte the batcher would copy (ASan checks the bounds).
      volatile uint8_t sink = 0;
      for (uint8_t b : mapped->planes[i]) sink = sink ^ b;
      (void)sink;
    }
    Check(mapped->params.size() == spec.params.size());
    inference::ModelInferResponse response;
    uint8_t* out =
        npuk::PrepareResponse(spec, request, mapped->items, &response);
    Check(out != nullptr);
    Check(response.raw_output_contents(0).size() ==
          mapped->items * spec.output_bytes());
  }
  return 0;
}
