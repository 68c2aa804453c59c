#include "client/cpp/model_info.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/common/status_macros.h"

namespace npuk {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

absl::StatusOr<TensorInfo> ReadTensor(
    const inference::ModelMetadataResponse::TensorMetadata& t,
    absl::string_view model) {
  TensorInfo info{t.name(), t.datatype(), {}};
  if (DatatypeBytes(info.datatype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model, "' tensor '", t.name(),
                     "' has datatype '", t.datatype(),
                     "', which has no fixed element size; this client "
                     "sends raw fixed-size tensors only"));
  }
  if (t.shape_size() < 1 || t.shape(0) != -1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", model, "' tensor '", t.name(), "' has shape [",
        absl::StrJoin(t.shape(), ","),
        "]; this client expects a variable leading batch dim, [-1, ...]"));
  }
  info.item_dims.assign(t.shape().begin() + 1, t.shape().end());
  return info;
}

// The parameter type a documentation line names, as a word.
std::string TypeNamedIn(absl::string_view doc) {
  for (absl::string_view word : absl::StrSplit(
           doc, absl::ByAnyChar(" \t,;:()[]{}=/"), absl::SkipEmpty())) {
    const std::string w = absl::AsciiStrToLower(word);
    if (w == "double" || w == "float" || w == "fp64") return "double";
    if (w == "int64" || w == "int" || w == "integer") return "int64";
    if (w == "bool" || w == "boolean") return "bool";
    if (w == "string") return "string";
  }
  return "";
}

template <typename T>
void FillUniformInt(std::mt19937& rng, size_t count, std::string& out) {
  using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
  // Half the type's range keeps arithmetic kernels away from saturation.
  const Wide hi = static_cast<Wide>(std::numeric_limits<T>::max() / 2);
  const Wide lo = std::is_signed_v<T> ? -hi - 1 : 0;
  std::uniform_int_distribution<Wide> d(lo, hi);
  const size_t start = out.size();
  out.resize(start + count * sizeof(T));
  for (size_t i = 0; i < count; ++i) {
    const T v = static_cast<T>(d(rng));
    std::memcpy(out.data() + start + i * sizeof(T), &v, sizeof(T));
  }
}

template <typename T>
void FillUniformReal(std::mt19937& rng, size_t count, std::string& out) {
  std::uniform_real_distribution<T> d(-1, 1);
  const size_t start = out.size();
  out.resize(start + count * sizeof(T));
  for (size_t i = 0; i < count; ++i) {
    const T v = d(rng);
    std::memcpy(out.data() + start + i * sizeof(T), &v, sizeof(T));
  }
}

// 16-bit floats in (-1, 1), built from their fields: a random sign and
// mantissa, and an exponent below the bias.
void FillHalf(std::mt19937& rng, size_t count, int mantissa_bits, int bias,
              std::string& out) {
  std::uniform_int_distribution<int> exponent(1, bias - 1);
  std::uniform_int_distribution<int> mantissa(0, (1 << mantissa_bits) - 1);
  std::uniform_int_distribution<int> sign(0, 1);
  for (size_t i = 0; i < count; ++i) {
    const uint16_t v = static_cast<uint16_t>(
        (sign(rng) << 15) | (exponent(rng) << mantissa_bits) | mantissa(rng));
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
}

absl::Status FillRandom(absl::string_view datatype, size_t count,
                        std::mt19937& rng, std::string& out) {
  if (datatype == "BOOL" || datatype == "UINT8") {
    if (datatype == "BOOL") {
      std::uniform_int_distribution<int> d(0, 1);
      for (size_t i = 0; i < count; ++i)
        out.push_back(static_cast<char>(d(rng)));
    } else {
      FillUniformInt<uint8_t>(rng, count, out);
    }
  } else if (datatype == "INT8") {
    FillUniformInt<int8_t>(rng, count, out);
  } else if (datatype == "INT16") {
    FillUniformInt<int16_t>(rng, count, out);
  } else if (datatype == "UINT16") {
    FillUniformInt<uint16_t>(rng, count, out);
  } else if (datatype == "INT32") {
    FillUniformInt<int32_t>(rng, count, out);
  } else if (datatype == "UINT32") {
    FillUniformInt<uint32_t>(rng, count, out);
  } else if (datatype == "INT64") {
    FillUniformInt<int64_t>(rng, count, out);
  } else if (datatype == "UINT64") {
    FillUniformInt<uint64_t>(rng, count, out);
  } else if (datatype == "FP32") {
    FillUniformReal<float>(rng, count, out);
  } else if (datatype == "FP64") {
    FillUniformReal<double>(rng, count, out);
  } else if (datatype == "FP16") {
    FillHalf(rng, count, 10, 15, out);
  } else if (datatype == "BF16") {
    FillHalf(rng, count, 7, 127, out);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot make random values of datatype '", datatype,
                     "'; pass the input from a file"));
  }
  return absl::OkStatus();
}

float HalfToFloat(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  float v = exp == 0    ? std::ldexp(static_cast<float>(man), -24)
            : exp == 31 ? (man ? NAN : INFINITY)
                        : std::ldexp(static_cast<float>(man | 0x400), exp - 25);
  return (h & 0x8000) ? -v : v;
}

template <typename T>
T Load(const std::string& data, size_t i) {
  T v;
  std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
  return v;
}

}  // namespace

size_t DatatypeBytes(absl::string_view t) {
  if (t == "BOOL" || t == "UINT8" || t == "INT8") return 1;
  if (t == "UINT16" || t == "INT16" || t == "FP16" || t == "BF16") return 2;
  if (t == "UINT32" || t == "INT32" || t == "FP32") return 4;
  if (t == "UINT64" || t == "INT64" || t == "FP64") return 8;
  return 0;
}

bool TensorInfo::fixed() const {
  for (int64_t d : item_dims) {
    if (d < 0) return false;
  }
  return true;
}

size_t TensorInfo::item_bytes() const {
  size_t n = DatatypeBytes(datatype);
  for (int64_t d : item_dims) n *= static_cast<size_t>(d);
  return n;
}

absl::StatusOr<ModelInfo> ModelInfo::From(
    const inference::ModelMetadataResponse& metadata,
    const inference::ModelConfigResponse& config) {
  ModelInfo info;
  info.name = metadata.name();
  for (const auto& t : metadata.inputs()) {
    NPUK_ASSIGN_OR_RETURN(TensorInfo in, ReadTensor(t, info.name));
    info.inputs.push_back(std::move(in));
  }
  for (const auto& t : metadata.outputs()) {
    NPUK_ASSIGN_OR_RETURN(TensorInfo out, ReadTensor(t, info.name));
    info.outputs.push_back(std::move(out));
  }
  info.max_items = config.config().max_batch_size();
  // A protobuf map has no order; sort so listings are stable.
  for (const auto& [name, value] : config.config().parameters()) {
    info.params.push_back(
        {name, value.string_value(), TypeNamedIn(value.string_value())});
  }
  std::sort(
      info.params.begin(), info.params.end(),
      [](const ParamInfo& a, const ParamInfo& b) { return a.name < b.name; });
  return info;
}

const TensorInfo* ModelInfo::FindInput(absl::string_view name) const {
  for (const TensorInfo& t : inputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const ParamInfo* ModelInfo::FindParam(absl::string_view name) const {
  for (const ParamInfo& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string ModelInfo::InputNames() const {
  return absl::StrJoin(inputs, ", ", [](std::string* out, const TensorInfo& t) {
    out->append(t.name);
  });
}

absl::StatusOr<inference::ModelInferRequest> BuildRequest(
    const ModelInfo& info, const Tensors& inputs, const Parameters& params) {
  for (const auto& [name, tensor] : inputs) {
    if (info.FindInput(name) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", info.name, "' has no input '", name,
                       "'; its inputs are ", info.InputNames()));
    }
  }
  inference::ModelInferRequest req;
  req.set_model_name(info.name);
  int64_t n = -1;
  std::string n_from;
  for (const TensorInfo& t : info.inputs) {
    auto it = inputs.find(t.name);
    if (it == inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", info.name, "' takes inputs ",
                       info.InputNames(), "; '", t.name, "' is missing"));
    }
    const Tensor& x = it->second;
    const std::string& datatype = x.datatype.empty() ? t.datatype : x.datatype;
    if (datatype != t.datatype) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' is ", datatype, "; model '",
                       info.name, "' takes ", t.datatype));
    }
    const size_t elem = DatatypeBytes(datatype);
    std::vector<int64_t> shape = x.shape;
    if (shape.empty()) {
      if (!t.fixed()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name, "' of model '", info.name, "' has item dims ",
            ShapeString(t.item_dims), "; give its shape, not just its bytes"));
      }
      const size_t item = t.item_bytes();
      if (x.data.empty() || x.data.size() % item != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name, "' of model '", info.name, "' has ",
            x.data.size(), " bytes; it takes whole items of ", item, " bytes (",
            t.datatype, ShapeString(t.item_dims), ")"));
      }
      shape.push_back(static_cast<int64_t>(x.data.size() / item));
      shape.insert(shape.end(), t.item_dims.begin(), t.item_dims.end());
    } else {
      bool fits = shape.size() == t.item_dims.size() + 1 && shape[0] >= 1;
      size_t elements = 1;
      for (size_t d = 0; fits && d < shape.size(); ++d) {
        fits = shape[d] >= 0 && (d == 0 || t.item_dims[d - 1] < 0 ||
                                 t.item_dims[d - 1] == shape[d]);
        elements *= static_cast<size_t>(std::max<int64_t>(shape[d], 0));
      }
      if (!fits) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name, "' has shape ", ShapeString(shape), "; model '",
            info.name, "' takes [N,", absl::StrJoin(t.item_dims, ","),
            "] with N >= 1 (-1 = any)"));
      }
      if (elements * elem != x.data.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", t.name, "' has shape ", ShapeString(shape),
                         " (", elements * elem, " bytes of ", datatype,
                         ") but ", x.data.size(), " bytes of data"));
      }
    }
    if (n == -1) {
      n = shape[0];
      n_from = t.name;
    } else if (shape[0] != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", t.name, "' has ", shape[0], " items but '",
                       n_from, "' has ", n, "; every input of model '",
                       info.name, "' needs the same N"));
    }
    auto* in = req.add_inputs();
    in->set_name(t.name);
    in->set_datatype(datatype);
    for (int64_t d : shape) in->add_shape(d);
    *req.add_raw_input_contents() = x.data;
  }
  for (const auto& [name, value] : params) {
    (*req.mutable_parameters())[name] = value;
  }
  return req;
}

absl::StatusOr<Tensors> RandomInputs(const ModelInfo& info, int64_t items,
                                     uint32_t seed, int64_t variable_dim) {
  if (items < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a request needs at least 1 item; got ", items));
  }
  std::mt19937 rng(seed);
  Tensors out;
  for (const TensorInfo& t : info.inputs) {
    Tensor& x = out[t.name];
    size_t elements = static_cast<size_t>(items);
    if (!t.fixed()) {
      if (variable_dim < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", t.name, "' of model '", info.name, "' has item dims ",
            ShapeString(t.item_dims),
            "; random inputs need fixed dims or a length for the variable "
            "ones"));
      }
      x.shape = {items};
      for (int64_t d : t.item_dims) {
        x.shape.push_back(d < 0 ? variable_dim : d);
        elements *= static_cast<size_t>(x.shape.back());
      }
    } else {
      elements *= t.item_bytes() / DatatypeBytes(t.datatype);
    }
    NPUK_RETURN_IF_ERROR(FillRandom(t.datatype, elements, rng, x.data));
  }
  return out;
}

absl::StatusOr<Tensors> SplitConcatenatedInputs(const ModelInfo& info,
                                                absl::string_view bytes) {
  size_t per_item = 0;
  for (const TensorInfo& t : info.inputs) {
    if (!t.fixed()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", t.name, "' of model '", info.name, "' has item dims ",
          ShapeString(t.item_dims),
          "; pass each input with its own file, --input=NAME=FILE"));
    }
    per_item += t.item_bytes();
  }
  if (per_item == 0 || bytes.empty() || bytes.size() % per_item != 0) {
    std::vector<std::string> parts;
    for (const TensorInfo& t : info.inputs) {
      parts.push_back(absl::StrCat(t.name, " ", t.datatype,
                                   ShapeString(t.item_dims), " (",
                                   t.item_bytes(), " B)"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the input is ", bytes.size(), " bytes; model '",
                     info.name, "' takes whole items of ", per_item,
                     " bytes: ", absl::StrJoin(parts, " then "),
                     info.inputs.size() > 1
                         ? " one after the other, or one file per input with "
                           "--input=NAME=FILE"
                         : ""));
  }
  const size_t n = bytes.size() / per_item;
  Tensors out;
  size_t offset = 0;
  for (const TensorInfo& t : info.inputs) {
    const size_t len = n * t.item_bytes();
    out[t.name].data = std::string(bytes.substr(offset, len));
    offset += len;
  }
  return out;
}

absl::StatusOr<std::pair<std::string, inference::InferParameter>>
ParseParameter(const ModelInfo& info, absl::string_view assignment) {
  const size_t eq = assignment.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter '", assignment, "' is not NAME=VALUE",
        info.params.empty() ? "" : "; model '" + info.name + "' takes ",
        absl::StrJoin(info.params, ", ",
                      [](std::string* out, const ParamInfo& p) {
                        out->append(p.name);
                      })));
  }
  const std::string name(assignment.substr(0, eq));
  const absl::string_view value = assignment.substr(eq + 1);
  const ParamInfo* declared = info.FindParam(name);
  const std::string type = declared != nullptr ? declared->type : "";
  inference::InferParameter p;
  bool b;
  int64_t i;
  double d;
  auto bad = [&](absl::string_view want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameter '", name, "' of model '", info.name, "' is ", want, "; '",
        value, "' is not",
        declared && !declared->doc.empty() ? " (" + declared->doc + ")" : ""));
  };
  if (type == "bool") {
    if (!absl::SimpleAtob(value, &b)) return bad("a bool (true/false)");
    p.set_bool_param(b);
  } else if (type == "int64") {
    if (!absl::SimpleAtoi(value, &i)) return bad("an int64");
    p.set_int64_param(i);
  } else if (type == "double") {
    if (!absl::SimpleAtod(value, &d)) return bad("a double");
    p.set_double_param(d);
  } else if (type != "string" && (value == "true" || value == "false")) {
    p.set_bool_param(value == "true");
  } else if (type != "string" && absl::SimpleAtoi(value, &i)) {
    p.set_int64_param(i);
  } else if (type != "string" && absl::SimpleAtod(value, &d)) {
    p.set_double_param(d);
  } else {
    p.set_string_param(std::string(value));
  }
  return std::make_pair(name, std::move(p));
}

absl::StatusOr<Tensors> OutputsOf(
    const inference::ModelInferResponse& response) {
  if (response.raw_output_contents_size() != response.outputs_size()) {
    return absl::InternalError(absl::StrCat(
        "daemon returned ", response.outputs_size(), " outputs but ",
        response.raw_output_contents_size(), " raw output contents for model '",
        response.model_name(), "'; is the target really npukd?"));
  }
  Tensors out;
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& o = response.outputs(i);
    Tensor t{o.datatype(),
             {o.shape().begin(), o.shape().end()},
             response.raw_output_contents(i)};
    size_t want = DatatypeBytes(t.datatype);
    for (int64_t d : t.shape) want *= d < 0 ? 0 : static_cast<size_t>(d);
    if (want == 0 || want != t.data.size()) {
      return absl::InternalError(absl::StrCat(
          "daemon returned ", t.data.size(), " bytes for output '", o.name(),
          "' ", t.datatype, ShapeString(t.shape), " of model '",
          response.model_name(), "', expected ", want));
    }
    out[o.name()] = std::move(t);
  }
  return out;
}

std::string PreviewValues(const Tensor& t, size_t max_values) {
  const size_t elem = DatatypeBytes(t.datatype);
  if (elem == 0) return "(no preview of " + t.datatype + ")";
  const size_t n = t.data.size() / elem;
  std::vector<std::string> v;
  for (size_t i = 0; i < std::min(n, max_values); ++i) {
    const std::string& s = t.data;
    if (t.datatype == "INT8") {
      v.push_back(absl::StrCat(Load<int8_t>(s, i)));
    } else if (t.datatype == "UINT8" || t.datatype == "BOOL") {
      v.push_back(absl::StrCat(Load<uint8_t>(s, i)));
    } else if (t.datatype == "INT16") {
      v.push_back(absl::StrCat(Load<int16_t>(s, i)));
    } else if (t.datatype == "UINT16") {
      v.push_back(absl::StrCat(Load<uint16_t>(s, i)));
    } else if (t.datatype == "INT32") {
      v.push_back(absl::StrCat(Load<int32_t>(s, i)));
    } else if (t.datatype == "UINT32") {
      v.push_back(absl::StrCat(Load<uint32_t>(s, i)));
    } else if (t.datatype == "INT64") {
      v.push_back(absl::StrCat(Load<int64_t>(s, i)));
    } else if (t.datatype == "UINT64") {
      v.push_back(absl::StrCat(Load<uint64_t>(s, i)));
    } else if (t.datatype == "FP32") {
      v.push_back(absl::StrCat(Load<float>(s, i)));
    } else if (t.datatype == "FP64") {
      v.push_back(absl::StrCat(Load<double>(s, i)));
    } else if (t.datatype == "FP16") {
      v.push_back(absl::StrCat(HalfToFloat(Load<uint16_t>(s, i))));
    } else {  // BF16: the high half of an FP32
      const uint32_t bits = static_cast<uint32_t>(Load<uint16_t>(s, i)) << 16;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      v.push_back(absl::StrCat(f));
    }
  }
  return absl::StrCat(absl::StrJoin(v, " "), n > max_values ? " ..." : "");
}

}  // namespace npuk
