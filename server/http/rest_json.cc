#include "server/http/rest_json.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "server/common/quote.h"
#include "server/common/status_macros.h"

namespace npuk::rest {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using inference::InferParameter;
using inference::ModelInferRequest;
using inference::ModelInferResponse;
using nlohmann::json;

// Deeper JSON is refused before parsing (the inference header never needs
// more than a few levels; nested `data` arrays follow the tensor's rank).
constexpr int kMaxJsonDepth = 64;

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// Nesting depth of arrays and objects, outside strings.
int JsonDepth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxJsonDepth) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// A JSON parameter value as an InferParameter.
absl::Status ToParameter(const std::string& where, const json& v,
                         InferParameter* p) {
  if (v.is_boolean()) {
    p->set_bool_param(v.get<bool>());
  } else if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(absl::StrCat(where, " is ", u,
                                  ", out of range for an int64 parameter"));
    }
    p->set_int64_param(static_cast<int64_t>(u));
  } else if (v.is_number_integer()) {
    p->set_int64_param(v.get<int64_t>());
  } else if (v.is_number_float()) {
    p->set_double_param(v.get<double>());
  } else if (v.is_string()) {
    p->set_string_param(v.get<std::string>());
  } else {
    return Invalid(absl::StrCat(
        where, " must be a boolean, an integer, a number or a string"));
  }
  return absl::OkStatus();
}

absl::Status CheckObject(const json& j, const std::string& where) {
  if (!j.is_object()) {
    return Invalid(absl::StrCat(where, " must be a JSON object"));
  }
  return absl::OkStatus();
}

// Width in bytes of the datatypes whose JSON data the REST edge encodes;
// 0 for others (the model refuses them by datatype anyway).
size_t EncodableWidth(const std::string& datatype, bool* is_float) {
  *is_float = datatype == "FP32";
  if (datatype == "INT8") return 1;
  if (datatype == "INT16") return 2;
  if (datatype == "INT32" || datatype == "FP32") return 4;
  return 0;
}

// Appends the values of a (possibly nested) `data` array, row-major.
absl::Status Flatten(const json& data, std::vector<const json*>& out,
                     size_t limit, const std::string& name) {
  if (!data.is_array()) {
    out.push_back(&data);
    return out.size() > limit ? Invalid("") : absl::OkStatus();
  }
  for (const json& v : data) {
    absl::Status s = Flatten(v, out, limit, name);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// The little-endian bytes of JSON `data` for an input of `datatype` and
// `elements` values.
absl::Status EncodeData(const std::string& name, const std::string& datatype,
                        const std::string& shape_text, size_t elements,
                        const json& data, std::string* bytes) {
  bool is_float = false;
  const size_t width = EncodableWidth(datatype, &is_float);
  if (width == 0) return absl::OkStatus();  // refused by datatype later
  if (!data.is_array()) {
    return Invalid(absl::StrCat("input ", QuoteBounded(name),
                                ": 'data' must be an array of numbers"));
  }
  std::vector<const json*> values;
  values.reserve(elements);
  if (!Flatten(data, values, elements, name).ok() ||
      values.size() != elements) {
    size_t count = 0;
    // Count without a limit for the message (bounded by the body size).
    std::vector<const json*> all;
    (void)Flatten(data, all, std::numeric_limits<size_t>::max(), name);
    count = all.size();
    return Invalid(absl::StrCat("input ", QuoteBounded(name), " has ", count,
                                " values in 'data'; shape ", shape_text,
                                " needs ", elements));
  }
  bytes->resize(elements * width);
  const int64_t hi = (int64_t{1} << (8 * width - 1)) - 1;
  const int64_t lo = -hi - 1;
  for (size_t i = 0; i < elements; ++i) {
    const json& v = *values[i];
    if (is_float) {
      if (!v.is_number()) {
        return Invalid(absl::StrCat("input ", QuoteBounded(name), " data[", i,
                                    "] is not a number"));
      }
      const auto f = static_cast<float>(v.get<double>());
      std::memcpy(bytes->data() + i * 4, &f, 4);
      continue;
    }
    if (!v.is_number_integer()) {
      return Invalid(absl::StrCat("input ", QuoteBounded(name), " data[", i,
                                  "] is not an integer (", datatype,
                                  " needs integers)"));
    }
    const bool too_big =
        v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
    const int64_t x = too_big ? hi + 1 : v.get<int64_t>();
    if (too_big || x < lo || x > hi) {
      return Invalid(absl::StrCat("input ", QuoteBounded(name), " value ",
                                  too_big ? v.dump() : absl::StrCat(x),
                                  " at index ", i, " is out of range for ",
                                  datatype));
    }
    const auto u = static_cast<uint32_t>(static_cast<int32_t>(x));
    for (size_t b = 0; b < width; ++b) {
      (*bytes)[i * width + b] = static_cast<char>(u >> (8 * b));
    }
  }
  return absl::OkStatus();
}

// JSON values of a tensor's little-endian bytes.
json DecodeData(const std::string& datatype, const std::string& raw) {
  json out = json::array();
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  auto le = [&](size_t i, size_t w) {
    uint32_t u = 0;
    for (size_t b = 0; b < w; ++b) u |= uint32_t{p[i * w + b]} << (8 * b);
    return u;
  };
  if (datatype == "INT8") {
    for (size_t i = 0; i < raw.size(); ++i) {
      out.push_back(static_cast<int8_t>(p[i]));
    }
  } else if (datatype == "INT16") {
    for (size_t i = 0; i < raw.size() / 2; ++i) {
      out.push_back(static_cast<int16_t>(le(i, 2)));
    }
  } else if (datatype == "INT32") {
    for (size_t i = 0; i < raw.size() / 4; ++i) {
      out.push_back(static_cast<int32_t>(le(i, 4)));
    }
  } else if (datatype == "FP32") {
    for (size_t i = 0; i < raw.size() / 4; ++i) {
      float f = 0;
      std::memcpy(&f, raw.data() + i * 4, 4);
      out.push_back(f);
    }
  }
  return out;
}

json ParameterJson(const InferParameter& p) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kBoolParam:
      return p.bool_param();
    case InferParameter::kInt64Param:
      return p.int64_param();
    case InferParameter::kDoubleParam:
      return p.double_param();
    case InferParameter::kStringParam:
      return p.string_param();
    case InferParameter::kUint64Param:
      return p.uint64_param();
    default:
      return nullptr;
  }
}

json FieldValue(const Message& m, const Reflection* r, const FieldDescriptor* f,
                int index);

json MessageJson(const Message& m) {
  json out = json::object();
  const Reflection* r = m.GetReflection();
  const auto* d = m.GetDescriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_map()) {
      json obj = json::object();
      const FieldDescriptor* key = f->message_type()->map_key();
      const FieldDescriptor* value = f->message_type()->map_value();
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        const Message& entry = r->GetRepeatedMessage(m, f, k);
        const Reflection* er = entry.GetReflection();
        json kj = FieldValue(entry, er, key, -1);
        const std::string ks =
            kj.is_string() ? kj.get<std::string>() : kj.dump();
        obj[ks] = FieldValue(entry, er, value, -1);
      }
      out[f->name()] = std::move(obj);
    } else if (f->is_repeated()) {
      json arr = json::array();
      for (int k = 0; k < r->FieldSize(m, f); ++k) {
        arr.push_back(FieldValue(m, r, f, k));
      }
      out[f->name()] = std::move(arr);
    } else if (f->containing_oneof() != nullptr ||
               f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (r->HasField(m, f)) out[f->name()] = FieldValue(m, r, f, -1);
    } else {
      out[f->name()] = FieldValue(m, r, f, -1);
    }
  }
  return out;
}

json FieldValue(const Message& m, const Reflection* r, const FieldDescriptor* f,
                int i) {
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageJson(rep ? r->GetRepeatedMessage(m, f, i)
                             : r->GetMessage(m, f));
  }
  return nullptr;
}

absl::Status ParseInput(const json& in, size_t index, std::string_view* binary,
                        ModelInferRequest* request) {
  const std::string where = absl::StrCat("inputs[", index, "]");
  if (absl::Status s = CheckObject(in, where); !s.ok()) return s;
  auto name_it = in.find("name");
  auto type_it = in.find("datatype");
  auto shape_it = in.find("shape");
  if (name_it == in.end() || !name_it->is_string()) {
    return Invalid(absl::StrCat(where, " needs a string 'name'"));
  }
  const std::string name = name_it->get<std::string>();
  if (type_it == in.end() || !type_it->is_string()) {
    return Invalid(absl::StrCat("input ", QuoteBounded(name),
                                " needs a string 'datatype' (e.g. \"INT16\")"));
  }
  if (shape_it == in.end() || !shape_it->is_array()) {
    return Invalid(absl::StrCat("input ", QuoteBounded(name),
                                " needs 'shape', an array of integers"));
  }
  auto* t = request->add_inputs();
  t->set_name(name);
  t->set_datatype(type_it->get<std::string>());
  size_t elements = 1;
  bool overflow = false;
  for (const json& d : *shape_it) {
    if (!d.is_number_integer() ||
        (d.is_number_unsigned() &&
         d.get<uint64_t>() >
             static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      return Invalid(absl::StrCat("input ", QuoteBounded(name),
                                  ": 'shape' must be an array of integers"));
    }
    const int64_t v = d.get<int64_t>();
    t->add_shape(v);
    if (v < 0 || (v > 0 && elements > std::numeric_limits<size_t>::max() /
                                          static_cast<size_t>(v))) {
      overflow = true;
    } else {
      elements *= static_cast<size_t>(v);
    }
  }
  std::optional<uint64_t> binary_size;
  bool shared_memory = false;
  if (auto p = in.find("parameters"); p != in.end()) {
    if (absl::Status s = CheckObject(
            *p, absl::StrCat("input ", QuoteBounded(name), " 'parameters'"));
        !s.ok()) {
      return s;
    }
    for (const auto& [key, value] : p->items()) {
      if (key == "binary_data_size") {
        if (!value.is_number_unsigned()) {
          return Invalid(absl::StrCat(
              "input ", QuoteBounded(name),
              ": parameter 'binary_data_size' must be a non-negative "
              "integer (bytes of binary data after the JSON header)"));
        }
        binary_size = value.get<uint64_t>();
        continue;
      }
      if (key == "shared_memory_region") shared_memory = true;
      NPUK_RETURN_IF_ERROR(
          ToParameter(absl::StrCat("input ", QuoteBounded(name), " parameter ",
                                   QuoteBounded(key)),
                      value, &(*t->mutable_parameters())[key]));
    }
  }
  const auto data_it = in.find("data");
  const bool has_data = data_it != in.end();
  if (binary_size.has_value() && has_data) {
    return Invalid(absl::StrCat("input ", QuoteBounded(name),
                                " has both 'data' and binary_data_size; send "
                                "its values one way"));
  }
  if (binary_size.has_value()) {
    if (*binary_size > binary->size()) {
      return Invalid(absl::StrCat(
          "input ", QuoteBounded(name), " has binary_data_size ", *binary_size,
          " but only ", binary->size(),
          " bytes of binary data remain after the JSON header; check "
          "Inference-Header-Content-Length and the sizes"));
    }
    request->add_raw_input_contents(
        std::string(binary->substr(0, static_cast<size_t>(*binary_size))));
    binary->remove_prefix(static_cast<size_t>(*binary_size));
    return absl::OkStatus();
  }
  if (!has_data) {
    if (shared_memory) return absl::OkStatus();
    return Invalid(absl::StrCat(
        "input ", QuoteBounded(name),
        " has no data; send 'data', binary data (parameter binary_data_size "
        "with Inference-Header-Content-Length) or a shared-memory region"));
  }
  if (overflow) {
    return Invalid(absl::StrCat("input ", QuoteBounded(name), " has shape ",
                                ShapeBounded(t->shape()),
                                "; dims must be non-negative"));
  }
  std::string bytes;
  NPUK_RETURN_IF_ERROR(EncodeData(name, t->datatype(), ShapeBounded(t->shape()),
                                  elements, *data_it, &bytes));
  request->add_raw_input_contents(std::move(bytes));
  return absl::OkStatus();
}

}  // namespace

bool OutputFormat::Binary(const std::string& output) const {
  for (const auto& [name, binary] : listed) {
    if (name == output) return binary.value_or(binary_default);
  }
  return binary_default;
}

bool OutputFormat::Wanted(const std::string& output) const {
  if (listed.empty()) return true;
  for (const auto& l : listed) {
    if (l.first == output) return true;
  }
  return false;
}

absl::Status ParseInferRequest(std::string_view body,
                               std::optional<size_t> header_length,
                               const std::string& model,
                               const std::string& version,
                               ModelInferRequest* request,
                               OutputFormat* format) {
  if (header_length.has_value() && *header_length > body.size()) {
    return Invalid(absl::StrCat(
        "Inference-Header-Content-Length is ", *header_length,
        " but the body has only ", body.size(),
        " bytes; it must be the byte length of the JSON header at the start "
        "of the body"));
  }
  const std::string_view header =
      header_length.has_value() ? body.substr(0, *header_length) : body;
  std::string_view binary =
      header_length.has_value() ? body.substr(*header_length) : "";
  if (JsonDepth(header) > kMaxJsonDepth) {
    return Invalid(absl::StrCat("the JSON inference header nests deeper than ",
                                kMaxJsonDepth, " levels"));
  }
  json j;
  try {
    j = json::parse(header.begin(), header.end());
  } catch (const json::parse_error& e) {
    return Invalid(absl::StrCat(
        "the inference header is not valid JSON (error at byte ",
        std::min<size_t>(e.byte, header.size()), " of ", header.size(),
        header_length.has_value()
            ? " given by Inference-Header-Content-Length)"
            : "); when binary tensor data follows the JSON, send its length "
              "in the Inference-Header-Content-Length header"));
  }
  if (absl::Status s = CheckObject(j, "the inference request"); !s.ok()) {
    return s;
  }
  request->set_model_name(model);
  request->set_model_version(version);
  if (auto id = j.find("id"); id != j.end()) {
    if (!id->is_string()) return Invalid("'id' must be a string");
    request->set_id(id->get<std::string>());
  }
  if (auto p = j.find("parameters"); p != j.end()) {
    NPUK_RETURN_IF_ERROR(CheckObject(*p, "'parameters'"));
    for (const auto& [key, value] : p->items()) {
      if (key == "binary_data_output") {
        if (!value.is_boolean()) {
          return Invalid("parameter 'binary_data_output' must be a boolean");
        }
        format->binary_default = value.get<bool>();
        continue;
      }
      NPUK_RETURN_IF_ERROR(
          ToParameter(absl::StrCat("parameter ", QuoteBounded(key)), value,
                      &(*request->mutable_parameters())[key]));
    }
  }
  auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_array()) {
    return Invalid(
        "the inference request needs 'inputs', an array of tensors "
        "(name, datatype, shape, data)");
  }
  size_t index = 0;
  for (const json& in : *inputs) {
    NPUK_RETURN_IF_ERROR(ParseInput(in, index++, &binary, request));
  }
  if (!binary.empty()) {
    return Invalid(absl::StrCat(
        binary.size(),
        " bytes follow the JSON header that no input claims; each binary "
        "input's binary_data_size must match its bytes"));
  }
  if (auto outputs = j.find("outputs"); outputs != j.end()) {
    if (!outputs->is_array()) {
      return Invalid("'outputs' must be an array of {\"name\": ...}");
    }
    size_t i = 0;
    for (const json& o : *outputs) {
      const std::string where = absl::StrCat("outputs[", i++, "]");
      NPUK_RETURN_IF_ERROR(CheckObject(o, where));
      auto name = o.find("name");
      if (name == o.end() || !name->is_string()) {
        return Invalid(absl::StrCat(where, " needs a string 'name'"));
      }
      auto* out = request->add_outputs();
      out->set_name(name->get<std::string>());
      std::optional<bool> binary_flag;
      if (auto p = o.find("parameters"); p != o.end()) {
        NPUK_RETURN_IF_ERROR(
            CheckObject(*p, absl::StrCat(where, " 'parameters'")));
        for (const auto& [key, value] : p->items()) {
          if (key == "binary_data") {
            if (!value.is_boolean()) {
              return Invalid(
                  absl::StrCat("output ", QuoteBounded(out->name()),
                               ": parameter 'binary_data' must be a boolean"));
            }
            binary_flag = value.get<bool>();
            continue;
          }
          if (key == "classification") {
            return absl::UnimplementedError(
                "the classification extension is not supported by npukd; "
                "request the output tensor itself");
          }
          NPUK_RETURN_IF_ERROR(
              ToParameter(absl::StrCat("output ", QuoteBounded(out->name()),
                                       " parameter ", QuoteBounded(key)),
                          value, &(*out->mutable_parameters())[key]));
        }
      }
      format->listed.emplace_back(out->name(), binary_flag);
    }
  }
  return absl::OkStatus();
}

void RenderInferResponse(const ModelInferResponse& response,
                         const OutputFormat& format, std::string* body,
                         std::optional<size_t>* header_length) {
  json j = json::object();
  j["model_name"] = response.model_name();
  j["model_version"] = response.model_version();
  if (!response.id().empty()) j["id"] = response.id();
  if (response.parameters_size() > 0) {
    json params = json::object();
    for (const auto& [key, value] : response.parameters()) {
      params[key] = ParameterJson(value);
    }
    j["parameters"] = std::move(params);
  }
  std::string tail;
  bool any_binary = false;
  json outputs = json::array();
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& out = response.outputs(i);
    if (!format.Wanted(out.name())) continue;
    json o = json::object();
    o["name"] = out.name();
    o["datatype"] = out.datatype();
    o["shape"] =
        json(std::vector<int64_t>(out.shape().begin(), out.shape().end()));
    json params = json::object();
    for (const auto& [key, value] : out.parameters()) {
      params[key] = ParameterJson(value);
    }
    const bool in_shm = out.parameters().contains("shared_memory_region");
    const std::string empty;
    const std::string& raw = i < response.raw_output_contents_size()
                                 ? response.raw_output_contents(i)
                                 : empty;
    if (!in_shm) {
      if (format.Binary(out.name())) {
        any_binary = true;
        params["binary_data_size"] = raw.size();
        tail.append(raw);
      } else {
        o["data"] = DecodeData(out.datatype(), raw);
      }
    }
    if (!params.empty()) o["parameters"] = std::move(params);
    outputs.push_back(std::move(o));
  }
  j["outputs"] = std::move(outputs);
  *body = Dump(j);
  if (any_binary) {
    *header_length = body->size();
    body->append(tail);
  } else {
    header_length->reset();
  }
}

nlohmann::json ToJson(const Message& message) { return MessageJson(message); }

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ErrorJson(absl::string_view message) {
  json j = json::object();
  j["error"] = std::string(message);
  return Dump(j);
}

}  // namespace npuk::rest
