#include "server/rpc/tensor_mapping.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

std::string ShapeString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

std::string ExpectedShape(const TensorDecl& t) {
  return absl::StrCat("[N,", absl::StrJoin(t.item_dims, ","), "]");
}

std::string InputNames(const KernelSpec& spec) {
  return absl::StrJoin(
      spec.inputs, ", ",
      [](std::string* out, const TensorDecl& t) { out->append(t.name); });
}

// Triton's reserved request parameters: accepted and, except "timeout",
// ignored (server:docs/protocol/extension_parameters.md).
bool IsReservedParameter(absl::string_view name) {
  return name == "sequence_id" || name == "sequence_start" ||
         name == "sequence_end" || name == "priority" || name == "timeout" ||
         name == "headers" || name == "binary_data_output" ||
         absl::StartsWith(name, "triton_");
}

size_t TypedCount(const InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() +
         c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() +
         c.fp64_contents_size() + c.bytes_contents_size();
}

// Converts typed contents into the little-endian bytes of the tensor type:
// int_contents for the integer types (KServe v2 carries INT8/16/32 there),
// fp32_contents for FP32.
absl::StatusOr<std::vector<uint8_t>> TypedToBytes(
    const TensorDecl& t, const ModelInferRequest::InferInputTensor& in,
    size_t elements) {
  const InferTensorContents& c = in.contents();
  const bool fp32 = t.dtype == DType::kFp32;
  const char* field = fp32 ? "fp32_contents" : "int_contents";
  const size_t count = fp32 ? static_cast<size_t>(c.fp32_contents_size())
                            : static_cast<size_t>(c.int_contents_size());
  if (TypedCount(c) != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("input '", t.name, "' is ", DTypeName(t.dtype),
                     ": typed values must be in contents.", field,
                     " (or send raw bytes in raw_input_contents)"));
  }
  if (count != elements) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", t.name, "' has ", count, " values in contents.", field,
        "; shape ", ShapeString(in.shape()), " needs ", elements));
  }
  const size_t width = DTypeBytes(t.dtype);
  std::vector<uint8_t> bytes(elements * width);
  if (fp32) {
    for (size_t i = 0; i < elements; ++i) {
      const float v = c.fp32_contents(static_cast<int>(i));
      std::memcpy(&bytes[i * width], &v, width);
    }
    return bytes;
  }
  // Two's complement range of a `width`-byte integer.
  const int64_t hi = (int64_t{1} << (8 * width - 1)) - 1;
  const int64_t lo = -hi - 1;
  for (size_t i = 0; i < elements; ++i) {
    const int64_t v = c.int_contents(static_cast<int>(i));
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' value ", v, " at index ", i,
                       " is out of range for ", DTypeName(t.dtype)));
    }
    // Little-endian: the low `width` bytes of the value.
    const uint32_t u = static_cast<uint32_t>(static_cast<int32_t>(v));
    for (size_t b = 0; b < width; ++b) {
      bytes[i * width + b] = static_cast<uint8_t>(u >> (8 * b));
    }
  }
  return bytes;
}

// A request parameter as the declared type. A double parameter also takes
// an integer (clients often send 1 for 1.0).
absl::StatusOr<ParamValue> ReadParameter(const ParamDecl& decl,
                                         const InferParameter& p) {
  switch (decl.type) {
    case ParamType::kDouble:
      if (p.parameter_choice_case() == InferParameter::kDoubleParam) {
        return ParamValue(p.double_param());
      }
      if (p.parameter_choice_case() == InferParameter::kInt64Param) {
        return ParamValue(static_cast<double>(p.int64_param()));
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", decl.name, "' must be a number (double_param)"));
    case ParamType::kInt64:
      if (p.parameter_choice_case() == InferParameter::kInt64Param) {
        return ParamValue(p.int64_param());
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", decl.name, "' must be an integer (int64_param)"));
    case ParamType::kBool:
      if (p.parameter_choice_case() == InferParameter::kBoolParam) {
        return ParamValue(p.bool_param());
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", decl.name, "' must be a boolean (bool_param)"));
  }
  return absl::InternalError("unknown parameter type");
}

// Reads Triton's reserved parameters and the kernel's own into `out`
// (params, queue_timeout) and encodes the kernel's into `record`.
absl::Status ReadParameters(const KernelSpec& spec,
                            const ModelInferRequest& request,
                            MappedRequest& out, std::vector<uint8_t>& record) {
  out.params = DefaultParams(spec);
  for (const auto& [name, value] : request.parameters()) {
    if (name == "timeout") {
      if (value.parameter_choice_case() != InferParameter::kInt64Param ||
          value.int64_param() < 0) {
        return absl::InvalidArgumentError(
            "parameter 'timeout' must be a non-negative int64_param in "
            "microseconds (the longest time the request may wait in the "
            "queue)");
      }
      if (value.int64_param() > 0) {
        out.queue_timeout = absl::Microseconds(value.int64_param());
      }
      continue;
    }
    if (IsReservedParameter(name)) continue;
    size_t p = 0;
    while (p < spec.params.size() && spec.params[p].name != name) ++p;
    if (p == spec.params.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", spec.name, "' has no parameter '", name, "'",
          spec.params.empty()
              ? std::string(" (it takes none)")
              : absl::StrCat(
                    " (it takes: ",
                    absl::StrJoin(spec.params, ", ",
                                  [](std::string* o, const ParamDecl& d) {
                                    o->append(d.name);
                                  }),
                    ")")));
    }
    NPUK_ASSIGN_OR_RETURN(out.params[p], ReadParameter(spec.params[p], value));
  }
  record.assign(spec.param_bytes, 0);
  if (spec.param_bytes > 0) {
    NPUK_RETURN_IF_ERROR(spec.encode_params(out.params, record));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MappedRequest> MapRequest(const KernelSpec& spec,
                                         const ModelInferRequest& request,
                                         size_t max_items) {
  if (!request.model_version().empty() && request.model_version() != "1") {
    return absl::NotFoundError(absl::StrCat(
        "model '", spec.name, "' has no version '", request.model_version(),
        "'; it has only version 1 (or leave model_version empty)"));
  }
  MappedRequest out;
  std::vector<uint8_t> record;
  NPUK_RETURN_IF_ERROR(ReadParameters(spec, request, out, record));

  const int n_inputs = request.inputs_size();
  if (n_inputs != static_cast<int>(spec.inputs.size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", spec.name, "' takes ", spec.inputs.size(), " input(s) (",
        InputNames(spec), "); the request has ", n_inputs));
  }
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != n_inputs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents has ", request.raw_input_contents_size(),
        " entries for ", n_inputs,
        " inputs; send one entry per input, in inputs order"));
  }

  // Map request inputs to spec inputs by name.
  std::vector<int> request_index(spec.inputs.size(), -1);
  for (int i = 0; i < n_inputs; ++i) {
    const auto& in = request.inputs(i);
    size_t s = 0;
    while (s < spec.inputs.size() && in.name() != spec.inputs[s].name) ++s;
    if (s == spec.inputs.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", spec.name, "' has no input '", in.name(),
                       "'; its inputs are ", InputNames(spec)));
    }
    if (request_index[s] != -1) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", in.name(), "' appears twice"));
    }
    request_index[s] = i;
  }

  // Every input must have the same N.
  out.planes.resize(spec.inputs.size());
  for (size_t s = 0; s < spec.inputs.size(); ++s) {
    const TensorDecl& t = spec.inputs[s];
    const char* datatype = DTypeName(t.dtype);
    const auto& in = request.inputs(request_index[s]);
    if (in.datatype() != datatype) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' has datatype '", in.datatype(),
                       "'; model '", spec.name, "' needs ", datatype));
    }
    if (in.shape_size() != static_cast<int>(t.item_dims.size()) + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' has shape ",
                       ShapeString(in.shape()), "; it must be ",
                       ExpectedShape(t), " with N the number of ", spec.units));
    }
    const int64_t n = in.shape(0);
    if (n < 1 || static_cast<uint64_t>(n) > max_items) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", t.name, "' has N = ", n, " (shape ",
          ShapeString(in.shape()), "); this server accepts 1 to ", max_items,
          " per request (max_batch_frames); split the request"));
    }
    for (size_t d = 0; d < t.item_dims.size(); ++d) {
      if (in.shape(static_cast<int>(d) + 1) != t.item_dims[d]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name, "' has shape ", ShapeString(in.shape()),
            "; it must be ", ExpectedShape(t)));
      }
    }
    if (s == 0) {
      out.items = static_cast<size_t>(n);
    } else if (static_cast<size_t>(n) != out.items) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", t.name, "' has N = ", n, " but '", spec.inputs[0].name,
          "' has N = ", out.items, "; all inputs need the same N"));
    }
    const size_t bytes = out.items * t.item_bytes();
    const size_t typed = TypedCount(in.contents());
    if (raw) {
      if (typed != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name,
            "' has typed contents while the request uses raw_input_contents; "
            "use one or the other for all inputs"));
      }
      const std::string& data = request.raw_input_contents(request_index[s]);
      if (data.size() != bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("raw_input_contents for '", t.name, "' is ",
                         data.size(), " bytes; shape ", ShapeString(in.shape()),
                         " of ", datatype, " is ", bytes, " bytes"));
      }
      out.planes[s] = absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(data.data()), data.size());
    } else {
      if (typed == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name,
            "' has no data; send it in raw_input_contents (recommended) or "
            "contents.",
            t.dtype == DType::kFp32 ? "fp32_contents" : "int_contents"));
      }
      NPUK_ASSIGN_OR_RETURN(std::vector<uint8_t> converted,
                            TypedToBytes(t, in, out.items * t.item_elements()));
      out.owned.push_back(std::move(converted));
      out.planes[s] = absl::MakeConstSpan(out.owned.back());
    }
  }

  if (spec.param_bytes > 0) {
    out.params_plane.reserve(out.items * record.size());
    for (size_t i = 0; i < out.items; ++i) {
      out.params_plane.insert(out.params_plane.end(), record.begin(),
                              record.end());
    }
    out.planes.push_back(absl::MakeConstSpan(out.params_plane));
  }

  for (const auto& o : request.outputs()) {
    if (o.name() != spec.output.name) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", spec.name, "' has no output '", o.name(),
                       "'; its output is '", spec.output.name, "'"));
    }
  }
  return out;
}

uint8_t* PrepareResponse(const KernelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items,
                         inference::ModelInferResponse* response) {
  response->set_model_name(spec.name);
  response->set_model_version("1");
  response->set_id(request.id());
  auto* out = response->add_outputs();
  out->set_name(spec.output.name);
  out->set_datatype(DTypeName(spec.output.dtype));
  out->add_shape(static_cast<int64_t>(items));
  for (int64_t d : spec.output.item_dims) out->add_shape(d);
  std::string* bytes = response->add_raw_output_contents();
  bytes->resize(items * spec.output_bytes());
  return reinterpret_cast<uint8_t*>(bytes->data());
}

}  // namespace npuk
