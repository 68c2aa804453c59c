// What a served model takes and returns, as the daemon describes it in
// ModelMetadata and ModelConfig, and the requests built from that
// description. npukctl, the load generator and any caller that wants a model
// it was not written for go through here, so none of them names a kernel.
//
//   auto info = client->Describe("passthrough");
//   auto r = client->Infer("passthrough", {{"in", {.data = bytes}}});
//   use(r->outputs.at("out").data);
#ifndef NPUK_CLIENT_CPP_MODEL_INFO_H_
#define NPUK_CLIENT_CPP_MODEL_INFO_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpc_service.pb.h"
#include "model_config.pb.h"

namespace npuk {

// Bytes of one element of a KServe v2 datatype ("INT16" -> 2); 0 for BYTES
// and names that are not KServe datatypes.
size_t DatatypeBytes(absl::string_view datatype);

struct TensorInfo {
  std::string name;
  std::string datatype;            // KServe v2 name: "INT8", "FP32", ...
  std::vector<int64_t> item_dims;  // after the leading batch dim; -1 = any

  // Whether every item dim is fixed, so that a byte count alone gives the
  // shape.
  bool fixed() const;
  // Bytes per item; REQUIRES: fixed().
  size_t item_bytes() const;
};

// A request parameter the model declares (ModelConfig.parameters; the
// daemon's value is one line of documentation).
struct ParamInfo {
  std::string name;
  std::string doc;
  // "double", "int64", "bool" or "string" when `doc` names one of them as a
  // word (the first it names), else empty: the value is typed by its look.
  std::string type;
};

// One tensor on the wire. On input `datatype` and `shape` may be left empty:
// they default to the model's datatype and [N, item dims...] with N the
// number of whole items in `data` (every item dim must then be fixed).
struct Tensor {
  std::string datatype;
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes, row-major
};
using Tensors = std::map<std::string, Tensor, std::less<>>;
using Parameters =
    std::map<std::string, inference::InferParameter, std::less<>>;

struct ModelInfo {
  std::string name;
  std::vector<TensorInfo> inputs;  // the order the daemon lists them in
  std::vector<TensorInfo> outputs;
  int64_t max_items = 0;  // ModelConfig max_batch_size: items per request
  std::vector<ParamInfo> params;

  // Reads the two responses. INVALID_ARGUMENT when a tensor is not
  // [-1, dims...] of a fixed-size datatype, which this client cannot build.
  static absl::StatusOr<ModelInfo> From(
      const inference::ModelMetadataResponse& metadata,
      const inference::ModelConfigResponse& config);

  const TensorInfo* FindInput(absl::string_view name) const;
  const ParamInfo* FindParam(absl::string_view name) const;
  // "q, k, v": for messages.
  std::string InputNames() const;
};

// A request for model `info.name` carrying every input exactly once (in
// `info.inputs` order) and `params`. INVALID_ARGUMENT, naming the tensor,
// when an input is missing or unknown, its datatype differs from the
// model's, its bytes are not whole items, its shape does not fit the
// metadata or the inputs disagree on N.
absl::StatusOr<inference::ModelInferRequest> BuildRequest(
    const ModelInfo& info, const Tensors& inputs,
    const Parameters& params = {});

// `items` items of deterministic pseudo-random data for every input, drawn
// from a generator seeded with `seed`: integers uniform over half their
// type's range, floats uniform in [-1, 1). For load tests and smoke checks,
// where any valid input will do. A variable item dim (attention's
// sequence lengths) is `variable_dim` long, and the tensors then carry
// their shapes; INVALID_ARGUMENT when an input has one and variable_dim
// is 0, or has a datatype without a fixed size.
absl::StatusOr<Tensors> RandomInputs(const ModelInfo& info, int64_t items,
                                     uint32_t seed = 7,
                                     int64_t variable_dim = 0);

// Splits one input file for `info`: with one input the whole file is that
// input; with several it is the inputs one after the other, in
// `info.inputs` order, each of the same number of items. INVALID_ARGUMENT
// when the size is not a whole number of such items.
absl::StatusOr<Tensors> SplitConcatenatedInputs(const ModelInfo& info,
                                                absl::string_view bytes);

// Parses "name=value" into a request parameter. The type is the one the
// model declares for `name` (ParamInfo::type); otherwise true/false is a
// bool, an integer an int64, another number a double and anything else a
// string. INVALID_ARGUMENT when there is no '=' or the value does not parse
// as the declared type.
absl::StatusOr<std::pair<std::string, inference::InferParameter>>
ParseParameter(const ModelInfo& info, absl::string_view assignment);

// The outputs of a response by name, each checked to hold exactly
// product(shape) elements of its datatype, so a truncated answer never
// reaches the caller (INTERNAL otherwise).
absl::StatusOr<Tensors> OutputsOf(
    const inference::ModelInferResponse& response);

// The first `max_values` elements of `t` as numbers, for a one-line
// summary: "1 -2 3 ...".
std::string PreviewValues(const Tensor& t, size_t max_values = 16);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_MODEL_INFO_H_
