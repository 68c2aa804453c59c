#include "server/rpc/tensor_mapping.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/quote.h"
#include "server/common/reserved_parameters.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

// A client-sent shape, at most 8 dims shown.
std::string ShapeString(absl::Span<const int64_t> dims) {
  return ShapeBounded(dims);
}

std::string ExpectedShape(const TensorDecl& t) {
  return absl::StrCat("[N,", absl::StrJoin(t.item_dims, ","), "]");
}

std::string InputNames(const KernelSpec& spec) {
  return absl::StrJoin(
      spec.inputs, ", ",
      [](std::string* out, const TensorDecl& t) { out->append(t.name); });
}

size_t TypedCount(const InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() +
         c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() +
         c.fp64_contents_size() + c.bytes_contents_size();
}

// A tensor's place in a system shared-memory region (Triton's
// shared_memory_region / _offset / _byte_size tensor parameters).
struct ShmRef {
  std::string region;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// A non-negative integer tensor parameter (int64_param or uint64_param).
absl::StatusOr<uint64_t> ReadShmSize(const InferParameter& p,
                                     const std::string& what,
                                     const char* name) {
  if (p.parameter_choice_case() == InferParameter::kInt64Param &&
      p.int64_param() >= 0) {
    return static_cast<uint64_t>(p.int64_param());
  }
  if (p.parameter_choice_case() == InferParameter::kUint64Param) {
    return p.uint64_param();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": parameter '", name,
                   "' must be a non-negative int64_param (bytes)"));
}

// The shared-memory parameters of one tensor; nullopt when it has none.
absl::StatusOr<std::optional<ShmRef>> ReadShmRef(
    const google::protobuf::Map<std::string, InferParameter>& params,
    const std::string& what, const shm::SharedMemoryRegistry* registry) {
  const auto region = params.find("shared_memory_region");
  const auto offset = params.find("shared_memory_offset");
  const auto size = params.find("shared_memory_byte_size");
  if (region == params.end() && offset == params.end() &&
      size == params.end()) {
    return std::optional<ShmRef>();
  }
  if (registry == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        " asks for system shared memory (parameter "
        "shared_memory_region), which this endpoint does not serve; send "
        "the data in the request instead"));
  }
  if (region == params.end() ||
      region->second.parameter_choice_case() != InferParameter::kStringParam ||
      region->second.string_param().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        " has shared-memory parameters but no shared_memory_region; set it "
        "(string_param) to the name of a registered region"));
  }
  if (size == params.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        " is in shared memory but has no shared_memory_byte_size; set it "
        "(int64_param) to the tensor's size in bytes"));
  }
  ShmRef ref;
  ref.region = region->second.string_param();
  NPUK_ASSIGN_OR_RETURN(ref.byte_size, ReadShmSize(size->second, what,
                                                   "shared_memory_byte_size"));
  if (offset != params.end()) {
    NPUK_ASSIGN_OR_RETURN(
        ref.offset, ReadShmSize(offset->second, what, "shared_memory_offset"));
  }
  return std::optional<ShmRef>(std::move(ref));
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
          "model '", spec.name, "' has no parameter ", QuoteBounded(name),
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

absl::StatusOr<MappedRequest> MapRequest(const KernelSpec& spec,
                                         const ModelInferRequest& request,
                                         size_t max_items,
                                         const shm::SharedMemoryRegistry* shm) {
  if (!request.model_version().empty() && request.model_version() != "1") {
    return absl::NotFoundError(
        absl::StrCat("model '", spec.name, "' has no version ",
                     QuoteBounded(request.model_version()),
                     "; it has only version 1 (or leave model_version empty)"));
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
  // Inputs in shared memory have no raw_input_contents entry (Triton):
  // the entries belong to the other inputs, in inputs order.
  std::vector<std::optional<ShmRef>> shm_refs(n_inputs);
  std::vector<int> raw_index(n_inputs, -1);
  int n_inline = 0;
  for (int i = 0; i < n_inputs; ++i) {
    const auto& in = request.inputs(i);
    NPUK_ASSIGN_OR_RETURN(
        shm_refs[i],
        ReadShmRef(in.parameters(),
                   absl::StrCat("input ", QuoteBounded(in.name())), shm));
    if (!shm_refs[i].has_value()) raw_index[i] = n_inline++;
  }
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != n_inline) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents has ", request.raw_input_contents_size(),
        " entries for ", n_inline, " inputs",
        n_inline == n_inputs ? "" : " not in shared memory",
        "; send one entry per input",
        n_inline == n_inputs ? "" : " that is not in shared memory",
        ", in inputs order"));
  }

  // Map request inputs to spec inputs by name.
  std::vector<int> request_index(spec.inputs.size(), -1);
  for (int i = 0; i < n_inputs; ++i) {
    const auto& in = request.inputs(i);
    size_t s = 0;
    while (s < spec.inputs.size() && in.name() != spec.inputs[s].name) ++s;
    if (s == spec.inputs.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", spec.name, "' has no input ", QuoteBounded(in.name()),
          "; its inputs are ", InputNames(spec)));
    }
    if (request_index[s] != -1) {
      return absl::InvalidArgumentError(
          absl::StrCat("input ", QuoteBounded(in.name()), " appears twice"));
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
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", t.name, "' has datatype ", QuoteBounded(in.datatype()),
          "; model '", spec.name, "' needs ", datatype));
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
    if (const auto& ref = shm_refs[request_index[s]]; ref.has_value()) {
      const std::string what = absl::StrCat("input '", t.name, "'");
      if (typed != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            what,
            " is in shared memory and also has typed contents; send it one "
            "way only"));
      }
      if (ref->byte_size != bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has shared_memory_byte_size ", ref->byte_size,
                         "; shape ", ShapeString(in.shape()), " of ", datatype,
                         " is ", bytes, " bytes"));
      }
      NPUK_ASSIGN_OR_RETURN(
          const shm::RegionView view,
          shm->Resolve(ref->region, ref->offset, ref->byte_size, what));
      std::vector<uint8_t> copied(bytes);  // one copy, as raw bytes take
      NPUK_RETURN_IF_ERROR(view.CopyTo(absl::MakeSpan(copied), what));
      out.owned.push_back(std::move(copied));
      out.planes[s] = absl::MakeConstSpan(out.owned.back());
    } else if (raw) {
      if (typed != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name,
            "' has typed contents while the request uses raw_input_contents; "
            "use one or the other for all inputs"));
      }
      const std::string& data =
          request.raw_input_contents(raw_index[request_index[s]]);
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

  bool output_seen = false;
  for (const auto& o : request.outputs()) {
    if (o.name() != spec.output.name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", spec.name, "' has no output ", QuoteBounded(o.name()),
          "; its output is '", spec.output.name, "'"));
    }
    if (output_seen) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", spec.output.name,
                       "' is requested twice; list each output once"));
    }
    output_seen = true;
    const std::string what = absl::StrCat("output '", spec.output.name, "'");
    NPUK_ASSIGN_OR_RETURN(const std::optional<ShmRef> ref,
                          ReadShmRef(o.parameters(), what, shm));
    if (!ref.has_value()) continue;
    const size_t bytes = out.items * spec.output_bytes();
    if (ref->byte_size < bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has shared_memory_byte_size ", ref->byte_size, "; ",
          out.items, " ", spec.units, " of output need ", bytes,
          " bytes; give the output at least that much of the region"));
    }
    NPUK_ASSIGN_OR_RETURN(
        out.output_region,
        shm->Resolve(ref->region, ref->offset, ref->byte_size, what));
  }
  return out;
}

bool UsesSharedMemory(const inference::ModelInferRequest& request) {
  auto has = [](const auto& params) {
    return params.contains("shared_memory_region") ||
           params.contains("shared_memory_offset") ||
           params.contains("shared_memory_byte_size");
  };
  for (const auto& in : request.inputs()) {
    if (has(in.parameters())) return true;
  }
  for (const auto& out : request.outputs()) {
    if (has(out.parameters())) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<SharedMemoryRewrite>> RewriteSharedMemory(
    const inference::ModelInferRequest& request,
    const shm::SharedMemoryRegistry* shm) {
  auto out = std::make_unique<SharedMemoryRewrite>();
  inference::ModelInferRequest& r = out->request;
  r = request;
  r.clear_raw_input_contents();
  int next_raw = 0;
  for (auto& in : *r.mutable_inputs()) {
    const std::string what = absl::StrCat("input ", QuoteBounded(in.name()));
    NPUK_ASSIGN_OR_RETURN(const std::optional<ShmRef> ref,
                          ReadShmRef(in.parameters(), what, shm));
    if (!ref.has_value()) {
      if (next_raw >= request.raw_input_contents_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            what,
            " is neither in shared memory nor in raw_input_contents; with "
            "inputs in shared memory, send the others as raw_input_contents "
            "(one entry per such input, in inputs order)"));
      }
      *r.add_raw_input_contents() = request.raw_input_contents(next_raw++);
      continue;
    }
    if (TypedCount(in.contents()) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what,
          " is in shared memory and also has typed contents; send it one way "
          "only"));
    }
    NPUK_ASSIGN_OR_RETURN(
        const shm::RegionView view,
        shm->Resolve(ref->region, ref->offset, ref->byte_size, what));
    std::string* bytes = r.add_raw_input_contents();
    bytes->resize(view.size());
    NPUK_RETURN_IF_ERROR(
        view.CopyTo(absl::MakeSpan(reinterpret_cast<uint8_t*>(bytes->data()),
                                   bytes->size()),
                    what));
    for (const char* k : {"shared_memory_region", "shared_memory_offset",
                          "shared_memory_byte_size"}) {
      in.mutable_parameters()->erase(k);
    }
  }
  if (next_raw != request.raw_input_contents_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents has ", request.raw_input_contents_size(),
        " entries for ", next_raw,
        " inputs not in shared memory; send one entry per such input, in "
        "inputs order"));
  }
  for (auto& o : *r.mutable_outputs()) {
    const std::string what = absl::StrCat("output ", QuoteBounded(o.name()));
    NPUK_ASSIGN_OR_RETURN(const std::optional<ShmRef> ref,
                          ReadShmRef(o.parameters(), what, shm));
    if (!ref.has_value()) continue;
    SharedMemoryRewrite::Output target;
    target.name = o.name();
    NPUK_ASSIGN_OR_RETURN(target.region, shm->Resolve(ref->region, ref->offset,
                                                      ref->byte_size, what));
    target.region_name = o.parameters().at("shared_memory_region");
    if (o.parameters().contains("shared_memory_offset")) {
      target.offset = o.parameters().at("shared_memory_offset");
    }
    for (const char* k : {"shared_memory_region", "shared_memory_offset",
                          "shared_memory_byte_size"}) {
      o.mutable_parameters()->erase(k);
    }
    out->outputs.push_back(std::move(target));
  }
  return out;
}

absl::Status DeliverSharedMemoryOutputs(
    const SharedMemoryRewrite& rewrite,
    inference::ModelInferResponse* response) {
  std::vector<int> moved;
  for (const SharedMemoryRewrite::Output& target : rewrite.outputs) {
    const std::string what = absl::StrCat("output ", QuoteBounded(target.name));
    int i = 0;
    while (i < response->outputs_size() &&
           response->outputs(i).name() != target.name) {
      ++i;
    }
    if (i == response->outputs_size() ||
        i >= response->raw_output_contents_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " was asked for in shared memory but the model '",
                       response->model_name(), "' has no such output"));
    }
    const std::string& bytes = response->raw_output_contents(i);
    if (bytes.size() > target.region.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " is ", bytes.size(),
          " bytes but its shared_memory_byte_size is ", target.region.size(),
          "; give the output at least that much of the region"));
    }
    NPUK_RETURN_IF_ERROR(target.region.CopyFrom(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()),
                            bytes.size()),
        what));
    auto& params = *response->mutable_outputs(i)->mutable_parameters();
    params["shared_memory_region"] = target.region_name;
    params["shared_memory_byte_size"].set_int64_param(
        static_cast<int64_t>(bytes.size()));
    if (target.offset.has_value()) {
      params["shared_memory_offset"] = *target.offset;
    }
    moved.push_back(i);
  }
  // Triton: an output in shared memory has no raw contents. Remove from the
  // back so the remaining indices stay valid.
  std::sort(moved.begin(), moved.end());
  for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
    response->mutable_raw_output_contents()->DeleteSubrange(*it, 1);
  }
  return absl::OkStatus();
}

absl::Status WriteSharedMemoryOutput(const KernelSpec& spec,
                                     const MappedRequest& mapped) {
  if (mapped.output_region.empty()) return absl::OkStatus();
  return mapped.output_region.CopyFrom(
      mapped.output_staging, absl::StrCat("output '", spec.output.name, "'"));
}

uint8_t* PrepareResponse(const KernelSpec& spec,
                         const inference::ModelInferRequest& request,
                         size_t items, inference::ModelInferResponse* response,
                         MappedRequest* mapped) {
  response->set_model_name(spec.name);
  response->set_model_version("1");
  response->set_id(request.id());
  auto* out = response->add_outputs();
  out->set_name(spec.output.name);
  out->set_datatype(DTypeName(spec.output.dtype));
  out->add_shape(static_cast<int64_t>(items));
  for (int64_t d : spec.output.item_dims) out->add_shape(d);
  if (mapped != nullptr && !mapped->output_region.empty()) {
    // Triton: an output written to shared memory has no raw contents; its
    // parameters say where it went.
    const size_t size = items * spec.output_bytes();
    mapped->output_staging.resize(size);
    const inference::ModelInferRequest::InferRequestedOutputTensor& requested =
        request.outputs(0);
    auto& params = *out->mutable_parameters();
    params["shared_memory_region"] =
        requested.parameters().at("shared_memory_region");
    params["shared_memory_byte_size"].set_int64_param(
        static_cast<int64_t>(size));
    if (requested.parameters().contains("shared_memory_offset")) {
      params["shared_memory_offset"] =
          requested.parameters().at("shared_memory_offset");
    }
    return mapped->output_staging.data();
  }
  std::string* bytes = response->add_raw_output_contents();
  bytes->resize(items * spec.output_bytes());
  return reinterpret_cast<uint8_t*>(bytes->data());
}

}  // namespace npuk
