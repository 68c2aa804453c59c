// How clients reach the daemon: TLS and mutual TLS with certificates made
// here by openssl, the unix socket's permissions, and the Prometheus
// endpoint. Loopback and unix sockets only.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace npuk {
namespace {

using npuk::testing::DaemonProcess;
using ::testing::HasSubstr;

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A CA, a server certificate for 127.0.0.1 and a client certificate.
class Certificates {
 public:
  Certificates() {
    char tmpl[] = "/tmp/npuk-certs-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    const std::string script = absl::StrCat(
        "set -e; cd ", dir_, "; exec >openssl.log 2>&1;",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
        "-days 1 -subj /CN=npuk-test-ca;",
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out "
        "server.csr -subj /CN=localhost;",
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > server.ext;",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out server.pem -days 1 -extfile server.ext;",
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out "
        "client.csr -subj /CN=npuk-test-client;",
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out client.pem -days 1");
    ok_ = std::system(("bash -c \"" + script + "\"").c_str()) == 0;
  }
  bool ok() const { return ok_; }
  std::string path(const char* name) const { return dir_ + "/" + name; }
  std::string pem(const char* name) const { return Read(path(name)); }

 private:
  std::string dir_;
  bool ok_ = false;
};

bool Live(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  inference::ServerLiveResponse resp;
  return stub->ServerLive(&ctx, inference::ServerLiveRequest(), &resp).ok() &&
         resp.live();
}

TEST(TransportTest, TlsServesTlsClientsAndRefusesPlaintext) {
  Certificates certs;
  ASSERT_TRUE(certs.ok()) << certs.pem("openssl.log");
  const std::string target = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = certs.pem("ca.pem");
  DaemonProcess d(
      {"--listen=" + target, "--tls_cert=" + certs.path("server.pem"),
       "--tls_key=" + certs.path("server.key")},
      grpc::SslCredentials(tls));
  EXPECT_TRUE(Live(d.channel()));
  EXPECT_FALSE(
      Live(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())));
}

TEST(TransportTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  Certificates certs;
  ASSERT_TRUE(certs.ok()) << certs.pem("openssl.log");
  const std::string target = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = certs.pem("ca.pem");
  with_cert.pem_private_key = certs.pem("client.key");
  with_cert.pem_cert_chain = certs.pem("client.pem");
  DaemonProcess d(
      {"--listen=" + target, "--tls_cert=" + certs.path("server.pem"),
       "--tls_key=" + certs.path("server.key"),
       "--tls_client_ca=" + certs.path("ca.pem")},
      grpc::SslCredentials(with_cert));
  EXPECT_TRUE(Live(d.channel()));
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = certs.pem("ca.pem");
  EXPECT_FALSE(
      Live(grpc::CreateChannel(target, grpc::SslCredentials(no_cert))));
}

TEST(TransportTest, TlsStartupErrorsNameTheFile) {
  const std::string target = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  const std::string out = ::testing::TempDir() + "/npukd_tls_err.log";
  const std::string cmd = absl::StrCat(
      npuk::testing::NpukdBinary(), " --listen=", target,
      " --tls_cert=/nonexistent/cert.pem --tls_key=/x.key >", out, " 2>&1");
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_THAT(Read(out), HasSubstr("/nonexistent/cert.pem"));
}

TEST(TransportTest, UnixSocketIsGroupReadableOnlyByDefault) {
  DaemonProcess d({});
  struct stat st {};
  ASSERT_EQ(::stat(d.target().substr(5).c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

TEST(TransportTest, SecondDaemonRefusesALiveSocket) {
  DaemonProcess d({});
  const std::string out = ::testing::TempDir() + "/npukd_twice.log";
  const std::string cmd =
      absl::StrCat(npuk::testing::NpukdBinary(), " --listen=", d.target(), " >",
                   out, " 2>&1");
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_THAT(Read(out), HasSubstr("another npukd"));
  EXPECT_TRUE(Live(d.channel()));
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  ::close(fd);
  return out;
}

TEST(TransportTest, PrometheusMetricsCountRequestsAndHealth) {
  DaemonProcess d({"--metrics=127.0.0.1:0"});
  std::smatch m;
  const std::string log = d.log();
  ASSERT_TRUE(
      std::regex_search(log, m, std::regex("metrics on .* \\(port (\\d+)\\)")))
      << log;
  const int port = std::stoi(m[1]);

  auto stub = d.stub();
  inference::ModelInferRequest r;
  r.set_model_name("mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(2);
  in->add_shape(400);
  r.add_raw_input_contents(std::string(1600, '\x11'));
  inference::ModelInferResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->ModelInfer(&ctx, r, &resp).ok());

  const std::string body = HttpGet(port, "/metrics");
  EXPECT_THAT(body, HasSubstr("200 OK"));
  EXPECT_THAT(body, HasSubstr("# TYPE npuk_inference_count_total counter"));
  EXPECT_THAT(
      body,
      HasSubstr("npuk_inference_count_total{model=\"mel\",version=\"1\"} 2"));
  EXPECT_THAT(
      body,
      HasSubstr(
          "npuk_inference_exec_count_total{model=\"mel\",version=\"1\"} 1"));
  EXPECT_THAT(body, HasSubstr("npuk_inference_request_success_total{model="
                              "\"mel\",version=\"1\"} 1"));
  EXPECT_THAT(
      body,
      HasSubstr("npuk_model_serving{model=\"attention\",version=\"1\"} 1"));
  // Every registered model has its series, passthrough included; its canary
  // runs are not counted as inferences.
  EXPECT_THAT(
      body,
      HasSubstr("npuk_model_serving{model=\"passthrough\",version=\"1\"} 1"));
  EXPECT_THAT(
      body,
      HasSubstr(
          "npuk_inference_count_total{model=\"passthrough\",version=\"1\"} 0"));
  EXPECT_THAT(body, HasSubstr("npuk_inference_batch_size_bucket{model=\"mel\","
                              "version=\"1\",le=\"2\"} 1"));
  EXPECT_THAT(HttpGet(port, "/"), HasSubstr("404"));
}

}  // namespace
}  // namespace npuk
