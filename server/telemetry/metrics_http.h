// A minimal HTTP/1.0 endpoint that serves GET /metrics (Prometheus text).
// One thread; each connection is answered and closed. Opt-in via --metrics.
#ifndef NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_
#define NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace npuk {

class MetricsHttpServer {
 public:
  // Binds HOST:PORT ("127.0.0.1:9464", "[::1]:0"; port 0 picks one) and
  // starts serving `render()` on GET /metrics.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host_port, std::function<std::string()> render);
  ~MetricsHttpServer();  // stops and joins

  int port() const { return port_; }

 private:
  MetricsHttpServer(int listen_fd, int stop_read, int stop_write, int port,
                    std::function<std::string()> render);
  void Serve();
  void Answer(int fd);

  const int listen_fd_;
  const int stop_read_;
  const int stop_write_;
  const int port_;
  std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_TELEMETRY_METRICS_HTTP_H_
