// A bare KServe v2 ModelInfer server that computes nothing: the baseline the
// serving bench compares npukd against. Its answers have npukd mel's sizes
// (800 B in -> 80 B out per frame, the same tensor metadata and timing
// parameters), so the difference is npukd's validation, batching and
// kernel time. Same callback API as npukd.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"

ABSL_FLAG(std::string, listen, "", "unix:PATH or HOST:PORT to serve on");

namespace {

constexpr size_t kInBytesPerFrame = 800;
constexpr size_t kOutBytesPerFrame = 80;

class EchoService final
    : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ModelInfer(
      grpc::CallbackServerContext* ctx, const inference::ModelInferRequest* req,
      inference::ModelInferResponse* resp) override {
    size_t in = 0;
    for (const std::string& raw : req->raw_input_contents()) in += raw.size();
    const int64_t frames = static_cast<int64_t>(in / kInBytesPerFrame);
    resp->set_model_name(req->model_name());
    resp->set_id(req->id());
    auto* out = resp->add_outputs();
    out->set_name("log_mel");
    out->set_datatype("INT8");
    out->add_shape(frames);
    out->add_shape(kOutBytesPerFrame);
    resp->add_raw_output_contents()->resize(frames * kOutBytesPerFrame);
    auto& p = *resp->mutable_parameters();
    for (const char* name : {"queue_us", "compute_us", "server_us"}) {
      p[name].set_int64_param(0);
    }
    p["batch_frames"].set_int64_param(frames);
    p["backend"].set_string_param("echo");
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* ServerReady(
      grpc::CallbackServerContext* ctx, const inference::ServerReadyRequest*,
      inference::ServerReadyResponse* resp) override {
    resp->set_ready(true);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "bare gRPC echo baseline for bench/serving: --listen=unix:PATH");
  absl::ParseCommandLine(argc, argv);
  // Blocked before gRPC starts its threads, so only sigwait() sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  if (listen.empty()) {
    std::fprintf(stderr, "echo: pass --listen=unix:PATH or HOST:PORT\n");
    return 1;
  }
  EchoService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "echo: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::fprintf(stderr, "echo: serving on %s\n", listen.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown();
  return 0;
}
