#include "server/telemetry/metrics_http.h"

#include <utility>

#include "server/common/status_macros.h"

namespace npuk {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& host_port, std::function<std::string()> render) {
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(std::move(render)));
  HttpServerOptions options;
  options.flag = "--metrics";
  options.max_body_bytes = 4096;  // scrapes are GETs
  options.max_buffered_bytes = 64 << 10;
  options.max_connections = kMaxConnections;
  options.internal_threads = 1;
  options.idle_timeout = absl::Seconds(10);
  options.request_timeout = absl::Seconds(10);
  options.connection_memory_bytes = 32 << 10;
  options.headers = {};
  MetricsHttpServer* self = server.get();
  NPUK_ASSIGN_OR_RETURN(
      server->http_,
      HttpServer::Start(
          host_port, std::move(options),
          [self](HttpRequest& request, HttpResponder respond) {
            HttpResponse r;
            r.content_type = "text/plain; version=0.0.4; charset=utf-8";
            if (request.path != "/metrics") {
              r.status = 404;
              r.body = "npukd serves Prometheus metrics at /metrics\n";
            } else if (request.method != "GET" && request.method != "HEAD") {
              r.status = 405;
              r.body = "/metrics takes GET\n";
              r.headers.emplace_back("Allow", "GET, HEAD");
            } else {
              r.body = self->render_();
            }
            std::move(respond)(std::move(r));
          }));
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (http_ != nullptr) http_->Stop(absl::Now());
}

}  // namespace npuk
