#include "tests/reliability/requests.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "health.grpc.pb.h"
#include "kernels/registry/registry.h"

namespace npuk::testing {

using inference::ModelInferRequest;
using inference::ModelInferResponse;

std::vector<int16_t> RandomAudio(std::mt19937& rng, size_t frames) {
  std::vector<int16_t> a(frames * 400);
  std::normal_distribution<double> noise(0, 3000);
  const double f = std::uniform_real_distribution<double>(100, 4000)(rng);
  for (size_t i = 0; i < a.size(); ++i) {
    const double v =
        8000 * std::sin(2 * M_PI * f * static_cast<double>(i) / 16000.0) +
        noise(rng);
    a[i] = static_cast<int16_t>(std::clamp(v, -32768.0, 32767.0));
  }
  return a;
}

std::vector<int8_t> RandomInt8(std::mt19937& rng, size_t n, double sigma) {
  std::normal_distribution<double> d(0, sigma);
  std::vector<int8_t> v(n);
  for (auto& x : v) {
    x = static_cast<int8_t>(std::clamp(std::lround(d(rng)), -128L, 127L));
  }
  return v;
}

ModelInferRequest MelRequest(const std::vector<int16_t>& audio) {
  ModelInferRequest r;
  r.set_model_name("mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(static_cast<int64_t>(audio.size() / 400));
  in->add_shape(400);
  r.add_raw_input_contents(std::string(
      reinterpret_cast<const char*>(audio.data()), audio.size() * 2));
  return r;
}

// The registered kernel's portable reference over `n` items of device
// arguments `args` (the same function npu-sim runs and the CPU backend
// matches byte for byte).
std::string Reference(const std::string& model,
                      const std::vector<const uint8_t*>& args, size_t n) {
  const KernelSpec& spec = *FindKernel(model);
  std::string out(n * spec.output_bytes(), '\0');
  spec.reference(args.data(), reinterpret_cast<uint8_t*>(out.data()), n);
  return out;
}

std::string MelReference(const std::vector<int16_t>& audio) {
  return Reference("mel", {reinterpret_cast<const uint8_t*>(audio.data())},
                   audio.size() / 400);
}

ModelInferRequest AttentionRequest(const std::vector<int8_t>& q,
                                   const std::vector<int8_t>& k,
                                   const std::vector<int8_t>& v,
                                   double score_scale) {
  ModelInferRequest r;
  r.set_model_name("attention");
  const int64_t n = static_cast<int64_t>(q.size() / 4096);
  for (auto [name, data] : {std::pair{"q", &q}, {"k", &k}, {"v", &v}}) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype("INT8");
    in->add_shape(n);
    in->add_shape(64);
    in->add_shape(64);
    r.add_raw_input_contents(
        std::string(reinterpret_cast<const char*>(data->data()), data->size()));
  }
  (*r.mutable_parameters())["score_scale"].set_double_param(score_scale);
  return r;
}

std::string AttentionReference(const std::vector<int8_t>& q,
                               const std::vector<int8_t>& k,
                               const std::vector<int8_t>& v,
                               double score_scale) {
  // Device argument 0 is q|k|v per tile, argument 1 the parameter record
  // per tile (kernels/attention/kernel.cc).
  const KernelSpec& spec = *FindKernel("attention");
  const size_t n = q.size() / 4096;
  std::vector<uint8_t> record(spec.param_bytes);
  const ParamValue value = score_scale;
  if (!spec.encode_params({&value, 1}, record).ok()) return "";
  std::vector<uint8_t> qkv(n * 12288), params;
  for (size_t t = 0; t < n; ++t) {
    std::memcpy(&qkv[t * 12288], &q[t * 4096], 4096);
    std::memcpy(&qkv[t * 12288 + 4096], &k[t * 4096], 4096);
    std::memcpy(&qkv[t * 12288 + 8192], &v[t * 4096], 4096);
    params.insert(params.end(), record.begin(), record.end());
  }
  return Reference("attention", {qkv.data(), params.data()}, n);
}

ModelInferRequest PassthroughRequest(const std::vector<int8_t>& blocks) {
  ModelInferRequest r;
  r.set_model_name("passthrough");
  auto* in = r.add_inputs();
  in->set_name("in");
  in->set_datatype("INT8");
  in->add_shape(static_cast<int64_t>(blocks.size() / 4096));
  in->add_shape(4096);
  r.add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(blocks.data()), blocks.size()));
  return r;
}

Sample MelSample(std::mt19937& rng, size_t frames) {
  const std::vector<int16_t> audio = RandomAudio(rng, frames);
  return {MelRequest(audio), MelReference(audio), frames};
}

Sample AttentionSample(std::mt19937& rng, size_t tiles) {
  const double sigma = 1 + (rng() % 200) / 100.0;
  const auto q = RandomInt8(rng, tiles * 4096, 20 * sigma);
  const auto k = RandomInt8(rng, tiles * 4096, 20 * sigma);
  const auto v = RandomInt8(rng, tiles * 4096, 30 * sigma);
  const double scale = std::ldexp(1.0, -(static_cast<int>(rng() % 12) + 4));
  return {AttentionRequest(q, k, v, scale), AttentionReference(q, k, v, scale),
          tiles};
}

Sample PassthroughSample(std::mt19937& rng, size_t blocks) {
  const auto bytes = RandomInt8(rng, blocks * 4096, 40);
  ModelInferRequest r = PassthroughRequest(bytes);
  std::string expected = r.raw_input_contents(0);
  return {std::move(r), std::move(expected), blocks};
}

bool HasFalseZeroItem(const std::string& got, const std::string& expected,
                      size_t item_bytes) {
  const size_t n = std::min(got.size(), expected.size()) / item_bytes;
  auto all_zero = [&](const std::string& s, size_t i) {
    return std::all_of(s.begin() + static_cast<ptrdiff_t>(i * item_bytes),
                       s.begin() + static_cast<ptrdiff_t>((i + 1) * item_bytes),
                       [](char c) { return c == 0; });
  };
  for (size_t i = 0; i < n; ++i) {
    if (all_zero(got, i) && !all_zero(expected, i)) return true;
  }
  return false;
}

grpc::Status Infer(InferStub& stub, const ModelInferRequest& r,
                   ModelInferResponse* resp, int deadline_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(deadline_ms));
  return stub.ModelInfer(&ctx, r, resp);
}

inference::ModelStatistics Stats(InferStub& stub, const std::string& model) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inference::ModelStatisticsRequest req;
  req.set_name(model);
  inference::ModelStatisticsResponse resp;
  if (!stub.ModelStatistics(&ctx, req, &resp).ok() ||
      resp.model_stats_size() == 0) {
    return inference::ModelStatistics();
  }
  return resp.model_stats(0);
}

std::optional<bool> ModelReady(InferStub& stub, const std::string& model) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  inference::ModelReadyRequest req;
  req.set_name(model);
  inference::ModelReadyResponse resp;
  if (!stub.ModelReady(&ctx, req, &resp).ok()) return std::nullopt;
  return resp.ready();
}

std::string HealthCheck(grpc::Channel& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) {
    return "error: " + std::to_string(s.error_code()) + " " + s.error_message();
  }
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
      resp.status());
}

bool WaitForServing(grpc::Channel& channel, const std::string& model,
                    bool serving, int timeout_ms) {
  auto stub = inference::GRPCInferenceService::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  const auto give_up =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string want = serving ? "SERVING" : "NOT_SERVING";
  while (std::chrono::steady_clock::now() < give_up) {
    if (ModelReady(*stub, model) == serving &&
        HealthCheck(channel, model) == want) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

int MetricsPortFromLog(const std::string& log_path) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream in(log_path);
    std::string line;
    while (std::getline(in, line)) {
      const size_t at = line.find("/metrics (port ");
      if (at != std::string::npos) {
        return std::atoi(line.c_str() + at + std::strlen("/metrics (port "));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return -1;
}

std::string HttpGet(int port, const std::string& path, int timeout_s,
                    size_t max_bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{.tv_sec = timeout_s, .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string get =
        "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (::send(fd, get.data(), get.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(get.size())) {
      char buf[4096];
      while (out.size() < max_bytes) {
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
      }
    }
  }
  ::close(fd);
  return out;
}

std::string ScrapeMetrics(int port) { return HttpGet(port, "/metrics"); }

double MetricValue(const std::string& text, const std::string& family,
                   const std::string& model) {
  const std::string prefix = family + "{model=\"" + model + "\"";
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    return std::atof(line.c_str() + space + 1);
  }
  return -1;
}

long ResidentKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

std::vector<std::string> Backends() { return {"cpu", "npu-sim"}; }

std::string BackendName(const std::string& backend) {
  std::string n = backend;
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

}  // namespace npuk::testing
