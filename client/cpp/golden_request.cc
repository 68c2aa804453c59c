#include "client/cpp/golden_request.h"

#include <cstdint>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/strings/str_format.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

inference::InferParameter ToInferParameter(const ParamValue& v) {
  inference::InferParameter p;
  std::visit(
      [&p](auto x) {
        using T = decltype(x);
        if constexpr (std::is_same_v<T, double>) {
          p.set_double_param(x);
        } else if constexpr (std::is_same_v<T, int64_t>) {
          p.set_int64_param(x);
        } else {
          p.set_bool_param(x);
        }
      },
      v);
  return p;
}

std::span<uint8_t> Bytes(std::string& s) {
  return {reinterpret_cast<uint8_t*>(s.data()), s.size()};
}

}  // namespace

absl::StatusOr<GoldenRequest> GoldenRequestFor(const KernelSpec& kernel) {
  const Golden& g = kernel.golden;
  if (g.items == 0 || g.inputs.size() != kernel.device_args.size()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("kernel '%s' has no golden vector", kernel.name));
  }
  // The golden inputs are device arguments; the wire wants each tensor
  // whole, and the parameters as values.
  std::vector<std::string> planes(kernel.plane_count());
  std::vector<std::span<uint8_t>> views;
  for (size_t p = 0; p < planes.size(); ++p) {
    planes[p].resize(kernel.plane_span(p, g.items));
    views.push_back(Bytes(planes[p]));
  }
  for (size_t arg = 0; arg < g.inputs.size(); ++arg) {
    ScatterArg(kernel, arg, g.inputs[arg].bytes.data(), g.items, views);
  }
  GoldenRequest out;
  if (kernel.param_bytes > 0) {
    const std::vector<ParamValue> values =
        g.params.empty() ? DefaultParams(kernel) : g.params;
    if (values.size() != kernel.params.size()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "kernel '%s' declares %d golden parameter values for %d "
          "parameters; fix KernelSpec::golden.params",
          kernel.name, values.size(), kernel.params.size()));
    }
    std::string record(kernel.param_bytes, '\0');
    NPUK_RETURN_IF_ERROR(kernel.encode_params(values, Bytes(record)));
    const std::string& plane = planes.back();
    for (size_t i = 0; i < g.items; ++i) {
      if (plane.compare(i * record.size(), record.size(), record) != 0) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "the golden input of kernel '%s' holds other parameters than "
            "its declared values encode (KernelSpec::golden.params, empty = "
            "the defaults); fix the kernel's declaration",
            kernel.name));
      }
    }
    for (size_t i = 0; i < kernel.params.size(); ++i) {
      out.params[kernel.params[i].name] = ToInferParameter(values[i]);
    }
  }
  for (size_t i = 0; i < kernel.inputs.size(); ++i) {
    Tensor& t = out.inputs[kernel.inputs[i].name];
    t.data = std::move(planes[i]);
    // The shape whole: a model may declare variable dims on the wire
    // (attention's sequence lengths) where the kernel's items are fixed.
    if (kernel.inputs[i].halo == 0) {
      t.shape = {static_cast<int64_t>(g.items)};
      t.shape.insert(t.shape.end(), kernel.inputs[i].item_dims.begin(),
                     kernel.inputs[i].item_dims.end());
    }
  }
  out.output = kernel.output.name;
  out.expected.assign(g.output.bytes.begin(), g.output.bytes.end());
  return out;
}

absl::Status CompareGolden(const GoldenRequest& g, const Tensors& outputs) {
  auto it = outputs.find(g.output);
  if (it == outputs.end()) {
    return absl::DataLossError(
        absl::StrFormat("golden answer has no output '%s'", g.output));
  }
  const std::string& got = it->second.data;
  if (got.size() != g.expected.size()) {
    return absl::DataLossError(
        absl::StrFormat("golden answer is %d bytes, expected %d", got.size(),
                        g.expected.size()));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != g.expected[i]) {
      return absl::DataLossError(absl::StrFormat(
          "golden answer differs at byte %d: got %d, expected %d", i,
          static_cast<int8_t>(got[i]), static_cast<int8_t>(g.expected[i])));
    }
  }
  return absl::OkStatus();
}

}  // namespace npuk
