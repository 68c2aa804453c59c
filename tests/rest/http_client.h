// HTTP for the REST tests and the REST bench: libcurl for well-formed
// requests, a raw loopback socket for the malformed framing libcurl would
// never send.
#ifndef NPUK_TESTS_REST_HTTP_CLIENT_H_
#define NPUK_TESTS_REST_HTTP_CLIENT_H_

#include <map>
#include <string>
#include <vector>

namespace npuk::testing {

struct HttpReply {
  long status = 0;  // 0: the transfer failed (see error)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;
};

// One client with a kept-alive connection to 127.0.0.1:port.
class HttpClient {
 public:
  explicit HttpClient(int port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpReply Get(const std::string& path);
  HttpReply Post(const std::string& path, const std::string& body,
                 const std::vector<std::string>& headers = {});

 private:
  HttpReply Perform(const std::string& method, const std::string& path,
                    const std::string* body,
                    const std::vector<std::string>& headers);
  int port_;
  void* curl_;
};

// Writes `request` to 127.0.0.1:port (then half-closes when `half_close`)
// and returns everything read until the server closes or `timeout_ms`
// passes.
std::string RawExchange(int port, const std::string& request, bool half_close,
                        int timeout_ms);

// The port npukd logged for `what` ("REST (KServe v2) on ... (port N)" or
// "/metrics (port N)"), waiting up to 5 s; -1 if absent.
int PortFromLog(const std::string& log_path, const std::string& marker);

}  // namespace npuk::testing

#endif  // NPUK_TESTS_REST_HTTP_CLIENT_H_
