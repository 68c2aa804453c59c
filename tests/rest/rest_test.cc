// The KServe v2 REST edge (--http) of the real daemon on 127.0.0.1, checked
// against its own gRPC edge: every endpoint, JSON and binary inference for
// every served model (outputs byte-identical to gRPC's, errors with gRPC's
// texts), malformed bodies and framing, bounded memory over 10k bad
// requests, and the /metrics endpoint under a slow client and SIGTERM.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"
#include "tests/rest/http_client.h"

namespace npuk {
namespace {

using nlohmann::json;
using npuk::testing::DaemonProcess;
using npuk::testing::HttpClient;
using npuk::testing::HttpReply;
using npuk::testing::PortFromLog;
using npuk::testing::RawExchange;
using ::testing::HasSubstr;

constexpr const char* kRestMarker = "REST (KServe v2) on";
// The suite's daemon refuses bodies above this (max_message_bytes).
constexpr size_t kMaxMessage = 8 << 20;

std::string WriteConfig() {
  char tmpl[] = "/tmp/npuk-rest-conf-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/npukd.conf";
  std::ofstream(path) << "max_message_bytes: " << kMaxMessage << "\n";
  return path;
}

class RestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new DaemonProcess(
        {"--config=" + WriteConfig(), "--http=127.0.0.1:0", "--backend=cpu"});
    port_ = PortFromLog(daemon_->log_path(), kRestMarker);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(port_, 0) << daemon_->log();
    http_ = std::make_unique<HttpClient>(port_);
    stub_ = daemon_->stub();
  }

  std::vector<std::string> Models() {
    grpc::ClientContext ctx;
    inference::RepositoryIndexRequest req;
    inference::RepositoryIndexResponse resp;
    EXPECT_TRUE(stub_->RepositoryIndex(&ctx, req, &resp).ok());
    std::vector<std::string> out;
    for (const auto& m : resp.models()) out.push_back(m.name());
    return out;
  }
  inference::ModelMetadataResponse Metadata(const std::string& model) {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest req;
    req.set_name(model);
    inference::ModelMetadataResponse resp;
    EXPECT_TRUE(stub_->ModelMetadata(&ctx, req, &resp).ok());
    return resp;
  }

  static DaemonProcess* daemon_;
  static int port_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

DaemonProcess* RestTest::daemon_ = nullptr;
int RestTest::port_ = -1;

json Body(const HttpReply& r) {
  return json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

TEST_F(RestTest, HealthEndpoints) {
  EXPECT_EQ(http_->Get("/v2/health/live").status, 200);
  EXPECT_EQ(http_->Get("/v2/health/ready").status, 200);
  for (const std::string& m : Models()) {
    EXPECT_EQ(http_->Get("/v2/models/" + m + "/ready").status, 200) << m;
    EXPECT_EQ(http_->Get("/v2/models/" + m + "/versions/1/ready").status, 200);
  }
  const HttpReply v2 = http_->Get("/v2/models/mel/versions/2/ready");
  EXPECT_EQ(v2.status, 404);
  EXPECT_THAT(Body(v2)["error"].get<std::string>(), HasSubstr("no version"));
  const HttpReply unknown = http_->Get("/v2/models/nope/ready");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(Body(unknown)["error"].get<std::string>(),
              HasSubstr("unknown model 'nope'"));
  EXPECT_EQ(http_->Post("/v2/health/live", "").status, 405);
  EXPECT_EQ(http_->Get("/v3/anything").status, 404);
}

TEST_F(RestTest, ServerAndModelMetadataMatchGrpc) {
  const json server = Body(http_->Get("/v2"));
  grpc::ClientContext ctx;
  inference::ServerMetadataResponse grpc_server;
  ASSERT_TRUE(stub_->ServerMetadata(&ctx, {}, &grpc_server).ok());
  EXPECT_EQ(server["name"], grpc_server.name());
  EXPECT_EQ(server["version"], grpc_server.version());
  EXPECT_THAT(server["extensions"].dump(), HasSubstr("binary_tensor_data"));

  for (const std::string& m : Models()) {
    const inference::ModelMetadataResponse g = Metadata(m);
    const HttpReply r = http_->Get("/v2/models/" + m);
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = Body(r);
    EXPECT_EQ(j["name"], g.name());
    EXPECT_EQ(j["platform"], g.platform());
    EXPECT_EQ(j["versions"], json({"1"}));
    ASSERT_EQ(j["inputs"].size(), static_cast<size_t>(g.inputs_size()));
    for (int i = 0; i < g.inputs_size(); ++i) {
      EXPECT_EQ(j["inputs"][i]["name"], g.inputs(i).name());
      EXPECT_EQ(j["inputs"][i]["datatype"], g.inputs(i).datatype());
      EXPECT_EQ(j["inputs"][i]["shape"],
                json(std::vector<int64_t>(g.inputs(i).shape().begin(),
                                          g.inputs(i).shape().end())));
    }
    EXPECT_EQ(j["outputs"][0]["name"], g.outputs(0).name());
    EXPECT_EQ(http_->Get("/v2/models/" + m + "/versions/1").status, 200);

    grpc::ClientContext cctx;
    inference::ModelConfigRequest creq;
    creq.set_name(m);
    inference::ModelConfigResponse cresp;
    ASSERT_TRUE(stub_->ModelConfig(&cctx, creq, &cresp).ok());
    const json config = Body(http_->Get("/v2/models/" + m + "/config"));
    EXPECT_EQ(config["name"], m);
    EXPECT_EQ(config["max_batch_size"], cresp.config().max_batch_size());
    EXPECT_EQ(config["input"].size(),
              static_cast<size_t>(cresp.config().input_size()));
  }
  EXPECT_EQ(http_->Get("/v2/models/nope").status, 404);
  EXPECT_EQ(http_->Get("/v2/models/nope/config").status, 404);
}

TEST_F(RestTest, RepositoryIndexAndUnsupportedExtensions) {
  const HttpReply r = http_->Post("/v2/repository/index", "{\"ready\":true}");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = Body(r);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j.size(), Models().size());
  for (const json& m : j) EXPECT_EQ(m["state"], "READY");
  EXPECT_EQ(http_->Post("/v2/repository/index", "").status, 200);
  EXPECT_EQ(http_->Post("/v2/repository/index", "{").status, 400);
  const HttpReply load = http_->Post("/v2/repository/models/mel/load", "");
  EXPECT_EQ(load.status, 501);
  EXPECT_THAT(Body(load)["error"].get<std::string>(),
              HasSubstr("model_repository"));
  EXPECT_EQ(http_->Get("/v2/cudasharedmemory/status").status, 501);
}

TEST_F(RestTest, SystemSharedMemoryRoutes) {
  HttpReply r = http_->Get("/v2/systemsharedmemory/status");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(Body(r).is_array());
  r = http_->Post(
      "/v2/systemsharedmemory/region/r1/register",
      R"({"key":"/npuk-rest-test-no-such-object","offset":0,"byte_size":64})");
  EXPECT_EQ(r.status, 404) << r.body;  // the object does not exist
  EXPECT_THAT(Body(r)["error"].get<std::string>(),
              HasSubstr("npuk-rest-test-no-such-object"));
  r = http_->Post("/v2/systemsharedmemory/region/r1/register", "{\"key\": 5}");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Body(r)["error"].get<std::string>(), HasSubstr("byte_size"));
  EXPECT_EQ(http_->Get("/v2/systemsharedmemory/region/r1/status").status, 404);
  EXPECT_EQ(http_->Post("/v2/systemsharedmemory/unregister", "").status, 200);
  EXPECT_EQ(http_->Get("/v2/systemsharedmemory/bogus").status, 404);
}

// Random bytes for one input of `model` with batch N = 2 (other variable
// dims 400), as (shape, bytes).
struct Tensor {
  std::string name, datatype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::vector<Tensor> RandomInputs(const inference::ModelMetadataResponse& m,
                                 std::mt19937& rng) {
  std::vector<Tensor> out;
  for (const auto& in : m.inputs()) {
    Tensor t{in.name(), in.datatype(), {}, {}};
    size_t elements = 1;
    for (int d = 0; d < in.shape_size(); ++d) {
      // Variable dims: N = 2 items, 4000 samples for a 1-D input (PCM),
      // 400 elsewhere.
      const int64_t v =
          in.shape(d) >= 0 ? in.shape(d)
                           : (in.shape_size() == 1 ? 4000 : (d == 0 ? 2 : 400));
      t.shape.push_back(v);
      elements *= static_cast<size_t>(v);
    }
    const size_t width = t.datatype == "INT8"    ? 1
                         : t.datatype == "INT16" ? 2
                                                 : 4;
    t.bytes.resize(elements * width);
    if (t.datatype == "FP32") {
      std::uniform_real_distribution<float> u(-1, 1);
      for (size_t i = 0; i < elements; ++i) {
        const float f = u(rng);
        std::memcpy(&t.bytes[i * 4], &f, 4);
      }
    } else {
      // Moderate values (int8 attention inputs are gaussian-ish).
      std::normal_distribution<double> g(0, t.datatype == "INT8" ? 20 : 2000);
      for (size_t i = 0; i < elements; ++i) {
        const auto v = static_cast<int32_t>(std::lround(
            std::clamp(g(rng), -127.0, 127.0) * (width == 1 ? 1 : 100)));
        for (size_t b = 0; b < width; ++b) {
          t.bytes[i * width + b] =
              static_cast<char>(static_cast<uint32_t>(v) >> (8 * b));
        }
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

json Values(const Tensor& t) {
  json out = json::array();
  const size_t width = t.datatype == "INT8" ? 1 : t.datatype == "INT16" ? 2 : 4;
  for (size_t i = 0; i < t.bytes.size() / width; ++i) {
    uint32_t u = 0;
    for (size_t b = 0; b < width; ++b) {
      u |= uint32_t{static_cast<unsigned char>(t.bytes[i * width + b])}
           << (8 * b);
    }
    if (t.datatype == "FP32") {
      float f;
      std::memcpy(&f, &u, 4);
      out.push_back(f);
    } else if (width == 1) {
      out.push_back(static_cast<int8_t>(u));
    } else if (width == 2) {
      out.push_back(static_cast<int16_t>(u));
    } else {
      out.push_back(static_cast<int32_t>(u));
    }
  }
  return out;
}

// {"inputs": [...]} with JSON data (binary = false) or binary data; returns
// the body and the header length (0 = all JSON).
std::pair<std::string, size_t> InferBody(const std::vector<Tensor>& inputs,
                                         bool binary_in, bool binary_out) {
  json j = json::object();
  j["id"] = "rest-1";
  j["inputs"] = json::array();
  std::string tail;
  for (const Tensor& t : inputs) {
    json in = {{"name", t.name}, {"datatype", t.datatype}, {"shape", t.shape}};
    if (binary_in) {
      in["parameters"] = {{"binary_data_size", t.bytes.size()}};
      tail += t.bytes;
    } else {
      in["data"] = Values(t);
    }
    j["inputs"].push_back(in);
  }
  j["parameters"] = {{"binary_data_output", binary_out}};
  const std::string header = j.dump();
  return {header + tail, binary_in ? header.size() : 0};
}

// The output bytes of a REST reply (binary or JSON data), or "" on error.
std::string OutputBytes(const HttpReply& r, const std::string& datatype) {
  std::string header = r.body;
  std::string tail;
  if (auto h = r.headers.find("inference-header-content-length");
      h != r.headers.end()) {
    const size_t n = std::stoul(h->second);
    header = r.body.substr(0, n);
    tail = r.body.substr(n);
  }
  const json j = json::parse(header, nullptr, false);
  if (j.is_discarded() || !j.contains("outputs")) return "";
  const json& o = j["outputs"][0];
  if (o.contains("parameters") &&
      o["parameters"].contains("binary_data_size")) {
    return tail.substr(0, o["parameters"]["binary_data_size"].get<size_t>());
  }
  std::string out;
  for (const json& v : o["data"]) {
    if (datatype == "FP32") {
      const float f = v.get<float>();
      out.append(reinterpret_cast<const char*>(&f), 4);
    } else {
      const auto x = static_cast<uint32_t>(v.get<int32_t>());
      const size_t width = datatype == "INT8" ? 1 : datatype == "INT16" ? 2 : 4;
      for (size_t b = 0; b < width; ++b) {
        out.push_back(static_cast<char>(x >> (8 * b)));
      }
    }
  }
  return out;
}

TEST_F(RestTest, InferEveryModelJsonAndBinaryMatchesGrpc) {
  std::mt19937 rng(12);
  for (const std::string& model : Models()) {
    SCOPED_TRACE(model);
    const inference::ModelMetadataResponse meta = Metadata(model);
    const std::vector<Tensor> inputs = RandomInputs(meta, rng);
    inference::ModelInferRequest req;
    req.set_model_name(model);
    for (const Tensor& t : inputs) {
      auto* in = req.add_inputs();
      in->set_name(t.name);
      in->set_datatype(t.datatype);
      for (int64_t d : t.shape) in->add_shape(d);
      req.add_raw_input_contents(t.bytes);
    }
    inference::ModelInferResponse grpc_resp;
    const grpc::Status gs = npuk::testing::Infer(*stub_, req, &grpc_resp);
    for (bool binary_in : {false, true}) {
      for (bool binary_out : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "binary in " << binary_in << " out " << binary_out);
        const auto [body, header] = InferBody(inputs, binary_in, binary_out);
        std::vector<std::string> headers;
        if (header > 0) {
          headers.push_back("Inference-Header-Content-Length: " +
                            std::to_string(header));
        }
        const HttpReply r =
            http_->Post("/v2/models/" + model + "/infer", body, headers);
        if (!gs.ok()) {
          // Same refusal, same text.
          EXPECT_NE(r.status, 200);
          EXPECT_EQ(Body(r)["error"], gs.error_message()) << r.body;
          continue;
        }
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.headers.count("inference-header-content-length") > 0,
                  binary_out);
        const std::string got = OutputBytes(r, grpc_resp.outputs(0).datatype());
        EXPECT_TRUE(got == grpc_resp.raw_output_contents(0))
            << "REST output (" << got.size() << " bytes) differs from gRPC's ("
            << grpc_resp.raw_output_contents(0).size() << " bytes)";
        const auto length = r.headers.find("inference-header-content-length");
        const std::string hdr =
            length != r.headers.end()
                ? r.body.substr(0, std::stoul(length->second))
                : r.body;
        const json j = json::parse(hdr);
        EXPECT_EQ(j["id"], "rest-1");
        EXPECT_EQ(j["model_name"], model);
        EXPECT_EQ(
            j["outputs"][0]["shape"],
            json(std::vector<int64_t>(grpc_resp.outputs(0).shape().begin(),
                                      grpc_resp.outputs(0).shape().end())));
        for (const char* p : {"queue_us", "compute_us", "server_us",
                              "batch_frames", "backend"}) {
          EXPECT_TRUE(j["parameters"].contains(p)) << p;
        }
      }
    }
  }
}

TEST_F(RestTest, StatisticsMatchGrpc) {
  // One mel request through REST so that the counters moved.
  std::mt19937 rng(3);
  const auto inputs = RandomInputs(Metadata("mel"), rng);
  const auto [body, header] = InferBody(inputs, true, true);
  ASSERT_EQ(
      http_
          ->Post("/v2/models/mel/infer", body,
                 {"Inference-Header-Content-Length: " + std::to_string(header)})
          .status,
      200);
  const inference::ModelStatistics g = npuk::testing::Stats(*stub_, "mel");
  const json j = Body(http_->Get("/v2/models/mel/stats"));
  ASSERT_EQ(j["model_stats"].size(), 1u);
  const json& s = j["model_stats"][0];
  EXPECT_EQ(s["name"], "mel");
  EXPECT_EQ(s["inference_count"], g.inference_count());
  EXPECT_EQ(s["execution_count"], g.execution_count());
  EXPECT_EQ(s["inference_stats"]["success"]["count"],
            g.inference_stats().success().count());
  const json all = Body(http_->Get("/v2/models/stats"));
  EXPECT_EQ(all["model_stats"].size(), Models().size());
  EXPECT_EQ(http_->Get("/v2/models/nope/stats").status, 404);
}

TEST_F(RestTest, BadRequestsGetClearErrors) {
  auto error = [](const HttpReply& r) {
    const json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].get<std::string>()
                                                : "<no error: " + r.body + ">";
  };
  HttpReply r = http_->Post("/v2/models/mel/infer", "{\"inputs\": [");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(error(r), HasSubstr("not valid JSON"));

  r = http_->Post("/v2/models/mel/infer", "{\"inputs\":[]}",
                  {"Inference-Header-Content-Length: 500"});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(error(r), HasSubstr("but the body has only 13 bytes"));

  const std::string h =
      R"({"inputs":[{"name":"audio","datatype":"INT16","shape":[1,400],"parameters":{"binary_data_size":800}}]})";
  r = http_->Post(
      "/v2/models/mel/infer", h + "short",
      {"Inference-Header-Content-Length: " + std::to_string(h.size())});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(error(r), HasSubstr("binary_data_size 800 but only 5 bytes"));

  r = http_->Post("/v2/models/nope/infer", "{\"inputs\":[]}");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(error(r), HasSubstr("unknown model 'nope'"));

  // Wrong shape: gRPC's own text.
  inference::ModelInferRequest req;
  req.set_model_name("mel");
  auto* in = req.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(1);
  in->add_shape(399);
  req.add_raw_input_contents(std::string(798, '\0'));
  inference::ModelInferResponse resp;
  const grpc::Status gs = npuk::testing::Infer(*stub_, req, &resp);
  ASSERT_FALSE(gs.ok());
  const std::string wrong =
      R"({"inputs":[{"name":"audio","datatype":"INT16","shape":[1,399],"parameters":{"binary_data_size":798}}]})";
  r = http_->Post(
      "/v2/models/mel/infer", wrong + std::string(798, '\0'),
      {"Inference-Header-Content-Length: " + std::to_string(wrong.size())});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error(r), gs.error_message());

  r = http_->Post("/v2/models/mel/infer", "{\"inputs\":[]}",
                  {"Content-Encoding: gzip"});
  EXPECT_EQ(r.status, 501);
  EXPECT_THAT(error(r), HasSubstr("uncompressed"));
  EXPECT_EQ(http_->Get("/v2/models/mel/infer").status, 405);
}

TEST_F(RestTest, FramingAndSizeLimits) {
  // Over max_message_bytes by Content-Length: 413 before any body byte.
  std::string reply = RawExchange(
      port_,
      "POST /v2/models/mel/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " +
          std::to_string(kMaxMessage + 1) + "\r\n\r\n",
      false, 5000);
  EXPECT_THAT(reply, HasSubstr("413"));
  EXPECT_THAT(reply, HasSubstr("over this server's limit"));

  // A chunked body that grows past the limit.
  std::string chunked =
      "POST /v2/models/mel/infer HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(1 << 20, 'x');
  for (size_t sent = 0; sent <= kMaxMessage; sent += chunk.size()) {
    chunked += "100000\r\n" + chunk + "\r\n";
  }
  chunked += "0\r\n\r\n";
  reply = RawExchange(port_, chunked, false, 10000);
  EXPECT_THAT(reply, HasSubstr("413"));

  // Content-Length shorter than the JSON: the JSON is cut, 400.
  reply = RawExchange(port_,
                      "POST /v2/models/mel/infer HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 5\r\nConnection: close\r\n\r\n"
                      "{\"inputs\": []}",
                      false, 5000);
  EXPECT_THAT(reply, HasSubstr("400"));
  EXPECT_THAT(reply, HasSubstr("not valid JSON"));

  // Content-Length longer than what arrives, then the client half-closes:
  // no answer is possible and nothing breaks.
  reply = RawExchange(port_,
                      "POST /v2/models/mel/infer HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 1000\r\n\r\n{\"inputs\"",
                      true, 2000);
  EXPECT_THAT(reply, ::testing::Not(HasSubstr("200 OK")));
  // Garbage instead of HTTP.
  reply = RawExchange(port_, "\x16\x03\x01 not http\r\n\r\n", true, 2000);
  EXPECT_THAT(reply, ::testing::Not(HasSubstr("200 OK")));
  EXPECT_EQ(http_->Get("/v2/health/live").status, 200);
}

TEST_F(RestTest, ResidentMemoryFlatOverTenThousandBadRequests) {
  const std::string binary_header =
      R"({"inputs":[{"name":"audio","datatype":"INT16","shape":[1,400],"parameters":{"binary_data_size":800}}]})";
  const std::string wrong_shape =
      R"({"inputs":[{"name":"audio","datatype":"INT16","shape":[2,400],"data":[1,2,3]}]})";
  auto round = [&](int n) {
    for (int i = 0; i < n; ++i) {
      switch (i % 5) {
        case 0:
          http_->Post("/v2/models/mel/infer", "{\"inputs\": [{\"name\":");
          break;
        case 1:
          http_->Post("/v2/models/mel/infer", "{}",
                      {"Inference-Header-Content-Length: 99999"});
          break;
        case 2:
          http_->Post("/v2/models/mel/infer",
                      binary_header + std::string(400, 'x'),
                      {"Inference-Header-Content-Length: " +
                       std::to_string(binary_header.size())});
          break;
        case 3:
          http_->Post("/v2/models/" + std::string(5000, 'm') + "/infer", "{}");
          break;
        case 4:
          http_->Post("/v2/models/mel/infer", wrong_shape);
          break;
      }
    }
  };
  round(1000);  // warm-up: allocator pools, connection buffers
  const long before = npuk::testing::ResidentKb(daemon_->pid());
  round(10000);
  const long after = npuk::testing::ResidentKb(daemon_->pid());
  std::printf("RSS over 10000 bad REST requests: %ld kB -> %ld kB (%+ld kB)\n",
              before, after, after - before);
  EXPECT_LT(after - before, 8 * 1024)
      << "RSS grew from " << before << " to " << after << " kB";
  EXPECT_EQ(http_->Get("/v2/health/live").status, 200);
}

// A client that trickles one byte per second into the metrics (or REST)
// listener until told to stop.
class SlowClient {
 public:
  SlowClient(int port, std::string text) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ =
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    thread_ = std::thread([this, text] {
      for (char c : text) {
        if (stop_.load()) return;
        if (::send(fd_, &c, 1, MSG_NOSIGNAL) != 1) return;
        for (int i = 0; i < 10 && !stop_.load(); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    });
  }
  ~SlowClient() {
    stop_.store(true);
    thread_.join();
    ::close(fd_);
  }
  bool connected() const { return connected_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(RestMetricsTest, SlowClientsNeitherBlockScrapesNorDelaySigterm) {
  DaemonProcess d(
      {"--http=127.0.0.1:0", "--metrics=127.0.0.1:0", "--drain_timeout=2s"});
  const int metrics = PortFromLog(d.log_path(), "/metrics (port ");
  const int rest = PortFromLog(d.log_path(), kRestMarker);
  ASSERT_GT(metrics, 0) << d.log();
  ASSERT_GT(rest, 0) << d.log();
  SlowClient slow_metrics(metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  SlowClient slow_rest(rest, "GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(slow_metrics.connected());
  ASSERT_TRUE(slow_rest.connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Concurrent scrapes are answered while the slow ones dribble.
  for (int i = 0; i < 3; ++i) {
    const std::string text = npuk::testing::ScrapeMetrics(metrics);
    EXPECT_THAT(text, HasSubstr("npuk_")) << "scrape " << i;
  }
  HttpClient http(rest);
  EXPECT_EQ(http.Get("/v2/health/ready").status, 200);
  HttpClient metrics_http(metrics);
  EXPECT_EQ(metrics_http.Get("/nope").status, 404);
  const auto start = std::chrono::steady_clock::now();
  const int code = d.Stop(SIGTERM, 10);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "SIGTERM with slow metrics and REST clients: exit %d in %.2f s "
      "(drain_timeout 2 s)\n",
      code, seconds);
  EXPECT_EQ(code, 0) << d.log();
  EXPECT_LT(seconds, 3.0) << "drain_timeout + 1 s";
}

}  // namespace
}  // namespace npuk
