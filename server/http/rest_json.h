// KServe v2 REST bodies <-> the gRPC messages (grpc_service.proto), so that
// the REST edge runs exactly the gRPC logic: JSON inference requests with
// Triton's binary-data extension become a ModelInferRequest (every tensor
// as raw bytes), responses become JSON with JSON or binary outputs, and any
// other response message becomes JSON through protobuf reflection (field
// names as in the .proto, 64-bit integers as JSON numbers).
// Pure functions: no server state.
#ifndef NPUK_SERVER_HTTP_REST_JSON_H_
#define NPUK_SERVER_HTTP_REST_JSON_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "grpc_service.pb.h"
#include "nlohmann/json.hpp"

namespace npuk::rest {

// Which outputs the client wants as binary data (Triton's
// binary_data_output request parameter and per-output binary_data).
struct OutputFormat {
  bool binary_default = false;
  // Output names the request listed, with their binary_data setting when
  // given.
  std::vector<std::pair<std::string, std::optional<bool>>> listed;
  bool Binary(const std::string& output) const;
  bool Wanted(const std::string& output) const;
};

// Parses a POST /v2/models/{model}[/versions/{version}]/infer body. The
// first `header_length` bytes (the whole body when nullopt) are the JSON
// inference header; binary tensor data follows it in input order, sized by
// each input's binary_data_size parameter. Every input ends up in
// raw_input_contents (JSON `data` is encoded as the little-endian bytes of
// its datatype). Errors are INVALID_ARGUMENT naming what is wrong.
absl::Status ParseInferRequest(std::string_view body,
                               std::optional<size_t> header_length,
                               const std::string& model,
                               const std::string& version,
                               inference::ModelInferRequest* request,
                               OutputFormat* format);

// The JSON (and binary tail) of an inference response. `header_length` is
// set when binary outputs follow the JSON (Inference-Header-Content-Length).
void RenderInferResponse(const inference::ModelInferResponse& response,
                         const OutputFormat& format, std::string* body,
                         std::optional<size_t>* header_length);

// Any message as JSON through reflection: every field of the message,
// including zero and empty ones, except unset sub-messages and oneof
// members; enums by name; maps as objects.
nlohmann::json ToJson(const google::protobuf::Message& message);

// {"error": message}, valid JSON whatever bytes `message` holds.
std::string ErrorJson(absl::string_view message);

// Compact JSON text; invalid UTF-8 is replaced, never thrown on.
std::string Dump(const nlohmann::json& j);

}  // namespace npuk::rest

#endif  // NPUK_SERVER_HTTP_REST_JSON_H_
