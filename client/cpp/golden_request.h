// The golden vectors of the kernel registry as a wire request: what
// `npukctl health --deep` sends to check a daemon end to end, byte for byte,
// with the very inputs its canaries replay internally.
#ifndef NPUK_CLIENT_CPP_GOLDEN_REQUEST_H_
#define NPUK_CLIENT_CPP_GOLDEN_REQUEST_H_

#include <string>

#include "absl/status/statusor.h"
#include "client/cpp/model_info.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk {

struct GoldenRequest {
  Tensors inputs;        // each input tensor whole, by name
  Parameters params;     // the values the golden was made with
  std::string output;    // the output name
  std::string expected;  // the exact bytes of that output
};

// Splits `kernel.golden`'s device-argument bytes back into tensors
// (ScatterArg) and turns its parameter values into request parameters.
// FAILED_PRECONDITION when the kernel has no golden vector, or when the
// declared values (golden.params, empty = the defaults) do not encode to the
// parameter plane the golden holds: the declaration is then wrong.
absl::StatusOr<GoldenRequest> GoldenRequestFor(const KernelSpec& kernel);

// The response output `r` holds compared with `g.expected`; DATA_LOSS names
// the first differing byte.
absl::Status CompareGolden(const GoldenRequest& g, const Tensors& outputs);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_GOLDEN_REQUEST_H_
