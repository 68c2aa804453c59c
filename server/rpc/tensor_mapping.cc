#include "server/rpc/tensor_mapping.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace npuk {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

std::string ShapeString(absl::Span<const int64_t> dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ","), "]");
}

std::string ExpectedShape(const TensorSpec& t) {
  return absl::StrCat("[N,", absl::StrJoin(t.item_dims, ","), "]");
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

// Converts typed int_contents into little-endian bytes of the tensor type.
absl::StatusOr<std::vector<uint8_t>> TypedToBytes(
    const TensorSpec& t, const ModelInferRequest::InferInputTensor& in,
    size_t elements) {
  const InferTensorContents& c = in.contents();
  if (TypedCount(c) != static_cast<size_t>(c.int_contents_size())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", t.name, "' is ", t.datatype,
        ": typed values must be in contents.int_contents (or send raw bytes "
        "in raw_input_contents)"));
  }
  if (static_cast<size_t>(c.int_contents_size()) != elements) {
    return absl::InvalidArgumentError(
        absl::StrCat("input '", t.name, "' has ", c.int_contents_size(),
                     " values in contents.int_contents; shape ",
                     ShapeString(in.shape()), " needs ", elements));
  }
  const int64_t lo = t.element_bytes == 1 ? -128 : -32768;
  const int64_t hi = t.element_bytes == 1 ? 127 : 32767;
  std::vector<uint8_t> bytes(elements * t.element_bytes);
  for (size_t i = 0; i < elements; ++i) {
    const int64_t v = c.int_contents(static_cast<int>(i));
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' value ", v, " at index ", i,
                       " is out of range for ", t.datatype));
    }
    if (t.element_bytes == 1) {
      bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(v));
    } else {
      const int16_t s = static_cast<int16_t>(v);
      std::memcpy(&bytes[i * 2], &s, 2);
    }
  }
  return bytes;
}

absl::StatusOr<double> NumericParameter(const std::string& name,
                                        const InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kDoubleParam:
      return p.double_param();
    case InferParameter::kInt64Param:
      return static_cast<double>(p.int64_param());
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter '", name, "' must be a number (double_param)"));
  }
}

absl::Status ReadParameters(const ModelSpec& spec,
                            const ModelInferRequest& request,
                            MappedRequest& out) {
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
    bool known = false;
    for (const char* p : spec.parameters) known |= (name == p);
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", spec.name, "' has no parameter '", name, "'",
          spec.parameters.empty()
              ? std::string(" (it takes none)")
              : absl::StrCat(" (it takes: ",
                             absl::StrJoin(spec.parameters, ", "), ")")));
    }
    if (name == "score_scale") {
      absl::StatusOr<double> s = NumericParameter(name, value);
      if (!s.ok()) return s.status();
      if (!ScoreScaleInRange(*s)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter 'score_scale' is ", *s,
            "; it must be a finite number "
            "in [",
            kMinScoreScale, ", ", kMaxScoreScale,
            "] (for float Q, K quantised with scales s_q, s_k send "
            "s_q*s_k/8)"));
      }
      out.score_scale = *s;
    }
  }
  if (spec.kernel == KernelId::kAttention) {
    out.scale = QuantizeScoreScale(out.score_scale);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MappedRequest> MapRequest(const ModelSpec& spec,
                                         const ModelInferRequest& request,
                                         size_t max_items) {
  if (!request.model_version().empty() && request.model_version() != "1") {
    return absl::NotFoundError(absl::StrCat(
        "model '", spec.name, "' has no version '", request.model_version(),
        "'; it has only version 1 (or leave model_version empty)"));
  }
  MappedRequest out;
  if (absl::Status s = ReadParameters(spec, request, out); !s.ok()) return s;

  const int n_inputs = request.inputs_size();
  if (n_inputs != static_cast<int>(spec.inputs.size())) {
    std::vector<const char*> names;
    for (const auto& t : spec.inputs) names.push_back(t.name);
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", spec.name, "' takes ", spec.inputs.size(), " input(s) (",
        absl::StrJoin(names, ", "), "); the request has ", n_inputs));
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
      std::vector<const char*> names;
      for (const auto& t : spec.inputs) names.push_back(t.name);
      return absl::InvalidArgumentError(
          absl::StrCat("model '", spec.name, "' has no input '", in.name(),
                       "'; its inputs are ", absl::StrJoin(names, ", ")));
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
    const TensorSpec& t = spec.inputs[s];
    const auto& in = request.inputs(request_index[s]);
    if (in.datatype() != t.datatype) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' has datatype '", in.datatype(),
                       "'; model '", spec.name, "' needs ", t.datatype));
    }
    if (in.shape_size() != static_cast<int>(t.item_dims.size()) + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", t.name, "' has shape ", ShapeString(in.shape()),
          "; it must be ", ExpectedShape(t), " with N the number of ",
          spec.kernel == KernelId::kMel ? "frames" : "tiles"));
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
                         " of ", t.datatype, " is ", bytes, " bytes"));
      }
      out.planes[s] = absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(data.data()), data.size());
    } else {
      if (typed == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name,
            "' has no data; send it in raw_input_contents (recommended) or "
            "contents.int_contents"));
      }
      absl::StatusOr<std::vector<uint8_t>> converted =
          TypedToBytes(t, in, out.items * t.item_elements());
      if (!converted.ok()) return converted.status();
      out.owned.push_back(*std::move(converted));
      out.planes[s] = absl::MakeConstSpan(out.owned.back());
    }
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

uint8_t* PrepareResponse(const ModelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items,
                         inference::ModelInferResponse* response) {
  response->set_model_name(std::string(spec.name));
  response->set_model_version("1");
  response->set_id(request.id());
  auto* out = response->add_outputs();
  out->set_name(std::string(spec.output.name));
  out->set_datatype(std::string(spec.output.datatype));
  out->add_shape(static_cast<int64_t>(items));
  for (int64_t d : spec.output.item_dims) out->add_shape(d);
  std::string* bytes = response->add_raw_output_contents();
  bytes->resize(items * spec.output.item_bytes());
  return reinterpret_cast<uint8_t*>(bytes->data());
}

}  // namespace npuk
