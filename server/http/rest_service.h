// The KServe v2 / Triton REST API over HttpServer: health, server and model
// metadata, config, statistics, repository index, inference (JSON tensors
// and the binary-data extension) and Triton's system shared-memory
// extension. Every call runs the gRPC service's own logic
// (InferenceService's Get* methods and StartInfer), so batching, timing
// parameters and error texts are the same on both edges; absl codes become
// HTTP statuses as Triton maps them (docs/REST.md).
#ifndef NPUK_SERVER_HTTP_REST_SERVICE_H_
#define NPUK_SERVER_HTTP_REST_SERVICE_H_

#include <string>

#include "absl/status/status.h"
#include "server/http/http_server.h"
#include "server/rpc/inference_service.h"

namespace npuk {

namespace shm {
class SharedMemoryRegistry;
}

// Triton's HTTP status for an absl code: INTERNAL 500, NOT_FOUND 404,
// UNAVAILABLE 503, UNIMPLEMENTED 501, everything else 400.
int HttpStatusOf(absl::StatusCode code);

class RestService {
 public:
  // `service` outlives this object. `shm` may be null: the shared-memory
  // routes then answer 501 naming the extension.
  RestService(InferenceService* service, shm::SharedMemoryRegistry* shm);

  // The HttpServer handler.
  void Handle(HttpRequest& request, HttpResponder respond);

  // Header names Handle reads (for HttpServerOptions::headers).
  static std::vector<std::string> Headers();

 private:
  void Infer(HttpRequest& request, const std::string& model,
             const std::string& version, HttpResponder respond);
  HttpResponse SharedMemory(const HttpRequest& request,
                            const std::vector<std::string>& parts);

  InferenceService* const service_;
  shm::SharedMemoryRegistry* const shm_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_HTTP_REST_SERVICE_H_
