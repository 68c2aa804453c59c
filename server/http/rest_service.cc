#include "server/http/rest_service.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/common/quote.h"
#include "server/http/rest_json.h"
#include "server/shm/shm_registry.h"

namespace npuk {
namespace {

using nlohmann::json;

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Error(const absl::Status& s) {
  return Json(HttpStatusOf(s.code()), rest::ErrorJson(s.message()));
}

// A message answer: its JSON, or the error.
HttpResponse MessageOr(const absl::Status& s,
                       const google::protobuf::Message& m) {
  if (!s.ok()) return Error(s);
  return Json(200, rest::Dump(rest::ToJson(m)));
}

HttpResponse Empty(int status) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain";
  return r;
}

bool IsGet(const HttpRequest& r) {
  return r.method == "GET" || r.method == "HEAD";
}

HttpResponse WrongMethod(const HttpRequest& r, const char* allowed) {
  HttpResponse out = Error(absl::InvalidArgumentError(
      absl::StrCat(QuoteBounded(r.path), " takes ", allowed, ", not ",
                   QuoteBounded(r.method))));
  out.status = 405;
  out.headers.emplace_back("Allow", allowed);
  return out;
}

HttpResponse Unsupported(absl::string_view what) {
  return Error(absl::UnimplementedError(
      absl::StrCat(what,
                   " is not supported by npukd (see docs/REST.md for "
                   "what it serves)")));
}

// An optional JSON object body ({} when empty).
absl::StatusOr<json> JsonBody(const HttpRequest& r) {
  if (r.body.empty()) return json::object();
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the body of ", QuoteBounded(r.path),
                     " must be a JSON object (or empty)"));
  }
  return j;
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInternal:
      return 500;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kUnimplemented:
      return 501;
    default:
      return 400;
  }
}

RestService::RestService(InferenceService* service,
                         shm::SharedMemoryRegistry* shm)
    : service_(service), shm_(shm) {}

std::vector<std::string> RestService::Headers() {
  return {"content-type", "content-encoding",
          "inference-header-content-length"};
}

void RestService::Handle(HttpRequest& request, HttpResponder respond) {
  const std::vector<std::string> parts =
      absl::StrSplit(request.path, '/', absl::SkipEmpty());
  auto reply = [&](HttpResponse r) { std::move(respond)(std::move(r)); };
  if (parts.empty() || parts[0] != "v2") {
    return reply(Error(absl::NotFoundError(
        absl::StrCat("no endpoint ", QuoteBounded(request.path),
                     "; npukd serves the KServe v2 REST API under /v2 "
                     "(docs/REST.md)"))));
  }
  const size_t n = parts.size();
  if (n == 1) {
    if (!IsGet(request)) return reply(WrongMethod(request, "GET"));
    inference::ServerMetadataResponse m;
    absl::Status s = service_->GetServerMetadata({}, &m);
    // REST's own extensions, once each (gRPC may list shared memory too).
    for (const char* e : {"binary_tensor_data", "system_shared_memory"}) {
      if (std::string(e) == "system_shared_memory" && shm_ == nullptr) continue;
      if (std::find(m.extensions().begin(), m.extensions().end(), e) ==
          m.extensions().end()) {
        m.add_extensions(e);
      }
    }
    return reply(MessageOr(s, m));
  }
  if (parts[1] == "health" && n == 3 &&
      (parts[2] == "live" || parts[2] == "ready")) {
    if (!IsGet(request)) return reply(WrongMethod(request, "GET"));
    bool ok = false;
    if (parts[2] == "live") {
      inference::ServerLiveResponse r;
      ok = service_->GetServerLive({}, &r).ok() && r.live();
    } else {
      inference::ServerReadyResponse r;
      ok = service_->GetServerReady({}, &r).ok() && r.ready();
    }
    return reply(Empty(ok ? 200 : 400));
  }
  if (parts[1] == "repository") {
    if (n == 3 && parts[2] == "index") {
      if (request.method != "POST") return reply(WrongMethod(request, "POST"));
      absl::StatusOr<json> body = JsonBody(request);
      if (!body.ok()) return reply(Error(body.status()));
      inference::RepositoryIndexRequest req;
      if (auto ready = body->find("ready"); ready != body->end()) {
        if (!ready->is_boolean()) {
          return reply(
              Error(absl::InvalidArgumentError("'ready' must be a boolean")));
        }
        req.set_ready(ready->get<bool>());
      }
      inference::RepositoryIndexResponse resp;
      absl::Status s = service_->GetRepositoryIndex(req, &resp);
      if (!s.ok()) return reply(Error(s));
      json out = json::array();
      for (const auto& m : resp.models()) out.push_back(rest::ToJson(m));
      return reply(Json(200, rest::Dump(out)));
    }
    return reply(Unsupported(
        "the model_repository extension (load/unload): npukd serves a fixed "
        "set of models"));
  }
  if (parts[1] == "systemsharedmemory") {
    return reply(SharedMemory(request, parts));
  }
  if (parts[1] == "cudasharedmemory") {
    return reply(Unsupported("the cuda_shared_memory extension"));
  }
  if (parts[1] == "trace" || parts[1] == "logging") {
    return reply(Unsupported(absl::StrCat("the ", parts[1], " extension")));
  }
  if (parts[1] == "models") {
    if (n == 3 && parts[2] == "stats") {
      if (!IsGet(request)) return reply(WrongMethod(request, "GET"));
      inference::ModelStatisticsResponse resp;
      return reply(MessageOr(service_->GetModelStatistics({}, &resp), resp));
    }
    if (n >= 3) {
      const std::string& model = parts[2];
      size_t at = 3;
      std::string version;
      if (n >= 5 && parts[3] == "versions") {
        version = parts[4];
        at = 5;
      }
      const std::string tail =
          at < n ? absl::StrJoin(parts.begin() + static_cast<long>(at),
                                 parts.end(), "/")
                 : "";
      if (tail.empty() || tail == "ready" || tail == "config" ||
          tail == "stats") {
        if (!IsGet(request)) return reply(WrongMethod(request, "GET"));
      }
      if (tail.empty()) {
        inference::ModelMetadataRequest req;
        req.set_name(model);
        req.set_version(version);
        inference::ModelMetadataResponse resp;
        return reply(MessageOr(service_->GetModelMetadata(req, &resp), resp));
      }
      if (tail == "ready") {
        inference::ModelReadyRequest req;
        req.set_name(model);
        req.set_version(version);
        inference::ModelReadyResponse resp;
        absl::Status s = service_->GetModelReady(req, &resp);
        if (!s.ok()) return reply(Error(s));
        return reply(Empty(resp.ready() ? 200 : 400));
      }
      if (tail == "config") {
        inference::ModelConfigRequest req;
        req.set_name(model);
        req.set_version(version);
        inference::ModelConfigResponse resp;
        absl::Status s = service_->GetModelConfig(req, &resp);
        return reply(MessageOr(s, resp.config()));
      }
      if (tail == "stats") {
        inference::ModelStatisticsRequest req;
        req.set_name(model);
        req.set_version(version);
        inference::ModelStatisticsResponse resp;
        return reply(MessageOr(service_->GetModelStatistics(req, &resp), resp));
      }
      if (tail == "infer") {
        if (request.method != "POST") {
          return reply(WrongMethod(request, "POST"));
        }
        return Infer(request, model, version, std::move(respond));
      }
      if (tail == "trace/setting") {
        return reply(Unsupported("the trace extension"));
      }
    }
  }
  return reply(Error(absl::NotFoundError(absl::StrCat(
      "no endpoint ", QuoteBounded(request.path),
      "; see docs/REST.md for the KServe v2 endpoints npukd serves"))));
}

void RestService::Infer(HttpRequest& request, const std::string& model,
                        const std::string& version, HttpResponder respond) {
  if (const std::string* enc = request.Header("content-encoding");
      enc != nullptr && *enc != "identity") {
    std::move(respond)(Error(absl::UnimplementedError(absl::StrCat(
        "Content-Encoding ", QuoteBounded(*enc),
        " is not supported by npukd; send the request body uncompressed"))));
    return;
  }
  std::optional<size_t> header_length;
  if (const std::string* h = request.Header("inference-header-content-length");
      h != nullptr) {
    size_t v = 0;
    if (!absl::SimpleAtoi(*h, &v)) {
      std::move(respond)(Error(absl::InvalidArgumentError(absl::StrCat(
          "Inference-Header-Content-Length ", QuoteBounded(*h),
          " is not a non-negative integer (the byte length of the JSON "
          "header)"))));
      return;
    }
    header_length = v;
  }
  struct Call {
    inference::ModelInferRequest request;
    inference::ModelInferResponse response;
    rest::OutputFormat format;
  };
  auto call = std::make_shared<Call>();
  absl::Status parsed =
      rest::ParseInferRequest(request.body, header_length, model, version,
                              &call->request, &call->format);
  std::string().swap(request.body);  // the proto holds the tensors now
  if (!parsed.ok()) {
    std::move(respond)(Error(parsed));
    return;
  }
  service_->StartInfer(
      &call->request, &call->response, absl::InfiniteFuture(),
      std::make_shared<std::atomic<bool>>(false),
      [call, respond = std::move(respond)](absl::Status status) mutable {
        if (!status.ok()) {
          std::move(respond)(Error(status));
          return;
        }
        HttpResponse r;
        std::optional<size_t> header;
        rest::RenderInferResponse(call->response, call->format, &r.body,
                                  &header);
        if (header.has_value()) {
          r.content_type = "application/octet-stream";
          r.headers.emplace_back("Inference-Header-Content-Length",
                                 absl::StrCat(*header));
        }
        std::move(respond)(std::move(r));
      });
}

HttpResponse RestService::SharedMemory(const HttpRequest& request,
                                       const std::vector<std::string>& parts) {
  if (shm_ == nullptr) {
    return Unsupported("the system_shared_memory extension");
  }
  // status | unregister | region/NAME/{status,register,unregister}
  const size_t n = parts.size();
  std::string name;
  std::string action;
  if (n == 3) {
    action = parts[2];
  } else if (n == 5 && parts[2] == "region") {
    name = parts[3];
    action = parts[4];
  }
  if (action == "status") {
    if (!IsGet(request)) return WrongMethod(request, "GET");
    absl::StatusOr<std::vector<shm::RegionStatus>> regions = shm_->Status(name);
    if (!regions.ok()) return Error(regions.status());
    json out = json::array();
    for (const shm::RegionStatus& r : *regions) {
      out.push_back({{"name", r.name},
                     {"key", r.key},
                     {"offset", r.offset},
                     {"byte_size", r.byte_size}});
    }
    return Json(200, rest::Dump(out));
  }
  if (action == "unregister") {
    if (request.method != "POST") return WrongMethod(request, "POST");
    absl::Status s = shm_->Unregister(name);
    return s.ok() ? Json(200, "") : Error(s);
  }
  if (action == "register" && !name.empty()) {
    if (request.method != "POST") return WrongMethod(request, "POST");
    absl::StatusOr<json> body = JsonBody(request);
    if (!body.ok()) return Error(body.status());
    auto key = body->find("key");
    auto size = body->find("byte_size");
    auto offset = body->find("offset");
    if (key == body->end() || !key->is_string() || size == body->end() ||
        !size->is_number_unsigned() ||
        (offset != body->end() && !offset->is_number_unsigned())) {
      return Error(absl::InvalidArgumentError(
          "register takes {\"key\": string, \"byte_size\": non-negative "
          "integer, \"offset\": non-negative integer (default 0)}"));
    }
    absl::Status s =
        shm_->Register(name, key->get<std::string>(),
                       offset == body->end() ? 0 : offset->get<uint64_t>(),
                       size->get<uint64_t>());
    return s.ok() ? Json(200, "") : Error(s);
  }
  return Error(absl::NotFoundError(absl::StrCat(
      "no endpoint ", QuoteBounded(request.path),
      "; the system shared-memory endpoints are /v2/systemsharedmemory/"
      "status, /unregister and /region/NAME/{status,register,unregister}")));
}

}  // namespace npuk
