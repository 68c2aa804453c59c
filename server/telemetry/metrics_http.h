// The Prometheus endpoint: GET /metrics (text exposition format 0.0.4) on
// the --metrics listener, served by HttpServer (libmicrohttpd): concurrent
// connections, a connection limit, idle and request timeouts, and a stop
// that closes every connection at once (a slow scraper never delays
// shutdown). Opt-in via --metrics.
#ifndef NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_
#define NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/http/http_server.h"

namespace npuk {

class MetricsHttpServer {
 public:
  // At most this many scrapers at once; more connections are refused.
  static constexpr unsigned kMaxConnections = 32;

  // Binds HOST:PORT ("127.0.0.1:9464", "[::1]:0"; port 0 picks one) and
  // starts serving `render()` on GET /metrics.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host_port, std::function<std::string()> render);
  ~MetricsHttpServer();  // closes every connection and joins

  int port() const { return http_->port(); }

 private:
  explicit MetricsHttpServer(std::function<std::string()> render)
      : render_(std::move(render)) {}

  std::function<std::string()> render_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_
