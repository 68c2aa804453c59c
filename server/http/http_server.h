// An HTTP/1.1 server on libmicrohttpd: event-driven (epoll) internal
// threads, bounded connections, bodies and memory, and asynchronous answers
// (a handler may answer later from any thread; the connection is suspended
// meanwhile). Used by the KServe v2 REST edge (rest_service.h) and the
// Prometheus /metrics endpoint.
#ifndef NPUK_SERVER_HTTP_HTTP_SERVER_H_
#define NPUK_SERVER_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace npuk {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query string
  std::string body;
  // Header values the handlers read (lower-case names); absent headers are
  // not in the list.
  std::vector<std::pair<std::string, std::string>> headers;
  const std::string* Header(std::string_view lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Answers one request; must be called exactly once, from any thread, at once
// or later. Answers after the server stopped are dropped.
using HttpResponder = absl::AnyInvocable<void(HttpResponse) &&>;
using HttpHandler = std::function<void(HttpRequest&, HttpResponder)>;

struct HttpServerOptions {
  // Named in errors ("--http", "--metrics").
  std::string flag = "--http";
  // Larger bodies are refused with 413: by Content-Length before any byte
  // is read, or as soon as a chunked body passes it.
  size_t max_body_bytes = 64 << 20;
  // Bytes of request bodies buffered across all connections; a request
  // that would pass it gets 503 at once (retry later).
  size_t max_buffered_bytes = 256 << 20;
  unsigned max_connections = 256;
  unsigned internal_threads = 1;
  // A connection with no traffic for this long is closed (MHD's timeout).
  absl::Duration idle_timeout = absl::Seconds(30);
  // A request whose head and body have not fully arrived this long after
  // its first byte is cut off (slow clients cannot hold a slot forever).
  absl::Duration request_timeout = absl::Seconds(60);
  // Per-connection memory pool for the request head (MHD's memory limit).
  size_t connection_memory_bytes = 64 << 10;
  // Header names (lower-case) copied into HttpRequest::headers.
  std::vector<std::string> headers = {"content-type", "content-encoding"};
};

class HttpServer {
 public:
  // Binds HOST:PORT ("127.0.0.1:8000", "[::1]:0", ":8000"; port 0 picks one)
  // and starts serving `handler`.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const std::string& host_port, HttpServerOptions options,
      HttpHandler handler);
  ~HttpServer();  // Stop(absl::Now())

  int port() const;

  // New requests get 503; requests waiting for an answer get until
  // `deadline` (then 503 "shutting down"), answers in flight are given a
  // short grace to be written, then every connection is closed and the
  // threads joined. Idempotent.
  void Stop(absl::Time deadline);

  class Impl;  // http_server.cc

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_HTTP_HTTP_SERVER_H_
