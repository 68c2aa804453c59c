// npukctl: talk to npukd from a shell. Subcommands models, infer, health,
// stats, bench; see kUsage.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/cpp/client.h"
#include "client/cpp/loadgen.h"
#include "client/cpp/log_mel.h"
#include "client/cpp/target.h"
#include "client/cpp/wav.h"
#if NPUK_HAVE_GOLDEN
#include "kernels/golden/golden.h"
#endif

ABSL_FLAG(std::string, target, "",
          "daemon address, unix:PATH or HOST:PORT (default: $NPUK_TARGET, "
          "else the daemon's default unix socket)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "deadline of each call");
ABSL_FLAG(std::string, model, "",
          "model: mel or attention (health: comma-separated list; default "
          "all models)");
ABSL_FLAG(bool, deep, false,
          "health: also send each model's golden input and compare the "
          "answer byte for byte");
ABSL_FLAG(bool, json, false, "print JSON instead of text");
ABSL_FLAG(int64_t, frames, 1,
          "frames (mel) or tiles (attention) per request for infer and bench");
ABSL_FLAG(int32_t, concurrency, 1, "bench: calls kept in flight");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "bench: how long to measure (ignored when --count is set)");
ABSL_FLAG(int64_t, count, 0, "bench: stop after this many requests");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(500),
          "bench: unmeasured warm-up before measuring");
ABSL_FLAG(int32_t, channels, 1, "bench: connections to spread calls over");
ABSL_FLAG(std::string, input, "",
          "infer: raw little-endian input file (mel: int16 [N,400]; "
          "attention: q then k then v, int8 [N,64,64] each); default is a "
          "synthetic signal of --frames frames");
ABSL_FLAG(std::string, wav, "",
          "infer --model=mel: compute Whisper log-mel features of this 16 kHz "
          "WAV file instead");
ABSL_FLAG(std::string, output, "", "infer: write the raw output bytes here");
ABSL_FLAG(double, score_scale, 0.125, "attention score scale");
ABSL_FLAG(std::string, tls_ca, "", "PEM roots to verify a TLS daemon");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM client key (mutual TLS)");

namespace npuk {
namespace {

constexpr char kUsage[] =
    R"(talks to the npukd inference daemon.

usage: npukctl [--target=unix:PATH|HOST:PORT] COMMAND [flags]

commands:
  models   list models, their state, tensors and per-request maximum
  infer    run one request: --model=mel|attention [--frames=N]
           [--input=FILE | --wav=FILE.wav] [--output=FILE]
  health   grpc.health.v1 status: [--model=mel,attention] [--deep]
           exit 0 all SERVING, 1 one is not, 2 daemon unreachable
  stats    per-model statistics (inference/execution counts, mean batch,
           queue and compute time)
  bench    load test: --model=mel --frames=1 --concurrency=32
           [--duration=10s | --count=N] [--json]; progress on stderr

examples:
  npukctl health --deep
  npukctl infer --model=mel --wav=speech.wav
  npukctl bench --model=mel --frames=100 --concurrency=4 --duration=5s
)";

// Exit codes shared by every command; health gives them their documented
// meaning.
constexpr int kOk = 0;
constexpr int kFail = 1;
constexpr int kUnreachable = 2;

// True when the daemon could not be reached at all, as opposed to a daemon
// that answered UNAVAILABLE itself (draining, model NOT_SERVING): gRPC's own
// connection failures say "failed to connect" / "Connection refused".
bool Unreachable(const absl::Status& s) {
  return s.code() == absl::StatusCode::kDeadlineExceeded ||
         (s.code() == absl::StatusCode::kUnavailable &&
          absl::StrContains(absl::AsciiStrToLower(s.message()), "connect"));
}

int Report(const absl::Status& s, const std::string& what) {
  std::string hint;
  if (Unreachable(s)) {
    hint = absl::StrFormat(
        "\nhint: is npukd running and listening on %s? Start it or pass "
        "--target=unix:PATH|HOST:PORT.",
        *ResolveTarget(absl::GetFlag(FLAGS_target)));
  }
  std::cerr << "npukctl: " << what << ": " << s << hint << "\n";
  return Unreachable(s) ? kUnreachable : kFail;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrFormat("cannot open '%s': check the path", path));
  }
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

absl::StatusOr<std::unique_ptr<Client>> Connect() {
  Client::Options o;
  o.target = absl::GetFlag(FLAGS_target);
  o.timeout = absl::GetFlag(FLAGS_timeout);
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  if (!ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    auto roots = ReadFile(ca);
    if (!roots.ok()) return roots.status();
    ssl.pem_root_certs = *roots;
    if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
      auto cert = ReadFile(absl::GetFlag(FLAGS_tls_cert));
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(absl::GetFlag(FLAGS_tls_key));
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    o.credentials = grpc::SslCredentials(ssl);
  }
  return Client::Connect(o);
}

std::string Shape(const google::protobuf::RepeatedField<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

// Model names from RepositoryIndex, so new models need no change here.
absl::StatusOr<std::vector<std::string>> ModelNames(Client& c) {
  grpc::ClientContext ctx;
  ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  inference::RepositoryIndexResponse idx;
  auto s = FromGrpc(c.inference().RepositoryIndex(
      &ctx, inference::RepositoryIndexRequest(), &idx));
  if (!s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& m : idx.models()) names.push_back(m.name());
  return names;
}

int Models(Client& c) {
  grpc::ClientContext ctx;
  ctx.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  inference::RepositoryIndexResponse idx;
  auto s = FromGrpc(c.inference().RepositoryIndex(
      &ctx, inference::RepositoryIndexRequest(), &idx));
  if (!s.ok()) return Report(s, "listing models");
  std::vector<std::string> json;
  for (const auto& m : idx.models()) {
    grpc::ClientContext mctx, cctx;
    mctx.set_deadline(
        absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
    cctx.set_deadline(
        absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
    inference::ModelMetadataRequest mreq;
    mreq.set_name(m.name());
    inference::ModelMetadataResponse meta;
    s = FromGrpc(c.inference().ModelMetadata(&mctx, mreq, &meta));
    if (!s.ok()) return Report(s, "reading metadata of " + m.name());
    inference::ModelConfigRequest creq;
    creq.set_name(m.name());
    inference::ModelConfigResponse cfg;
    s = FromGrpc(c.inference().ModelConfig(&cctx, creq, &cfg));
    if (!s.ok()) return Report(s, "reading config of " + m.name());
    std::vector<std::string> ins, outs;
    for (const auto& t : meta.inputs()) {
      ins.push_back(
          absl::StrCat(t.name(), " ", t.datatype(), Shape(t.shape())));
    }
    for (const auto& t : meta.outputs()) {
      outs.push_back(
          absl::StrCat(t.name(), " ", t.datatype(), Shape(t.shape())));
    }
    if (absl::GetFlag(FLAGS_json)) {
      json.push_back(absl::StrFormat(
          "{\"name\": \"%s\", \"state\": \"%s\", \"reason\": \"%s\", "
          "\"max_frames\": %d, \"inputs\": [\"%s\"], \"outputs\": [\"%s\"]}",
          m.name(), m.state(), m.reason(), cfg.config().max_batch_size(),
          absl::StrJoin(ins, "\", \""), absl::StrJoin(outs, "\", \"")));
    } else {
      std::cout << absl::StrFormat(
          "%-10s %-10s max %d per request  in: %s  out: %s%s\n", m.name(),
          m.state(), cfg.config().max_batch_size(), absl::StrJoin(ins, ", "),
          absl::StrJoin(outs, ", "),
          m.reason().empty() ? "" : "  (" + m.reason() + ")");
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "[" << absl::StrJoin(json, ", ") << "]\n";
  }
  return kOk;
}

// A deterministic input of `n` items: a 440 Hz tone for mel, uniform int8
// tiles for attention.
inference::ModelInferRequest Synthetic(const std::string& model, int64_t n) {
  if (model == "mel") {
    std::vector<int16_t> frames(n * kMelFrameSamples);
    for (size_t i = 0; i < frames.size(); ++i) {
      frames[i] = static_cast<int16_t>(
          8000 * std::sin(2 * M_PI * 440.0 * i / kSampleRate));
    }
    return *Client::MelRequest(frames);
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> d(-64, 64);
  std::vector<int8_t> q(n * kTileDim * kTileDim), k(q.size()), v(q.size());
  for (auto* t : {&q, &k, &v}) {
    for (auto& x : *t) x = static_cast<int8_t>(d(rng));
  }
  return *Client::AttentionRequest(q, k, v, absl::GetFlag(FLAGS_score_scale));
}

absl::StatusOr<inference::ModelInferRequest> RequestFromFlags() {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (model != "mel" && model != "attention") {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--model=%s: choose --model=mel or --model=attention", model));
  }
  if (absl::GetFlag(FLAGS_frames) < 1) {
    return absl::InvalidArgumentError("--frames must be at least 1");
  }
  const std::string path = absl::GetFlag(FLAGS_input);
  if (path.empty()) return Synthetic(model, absl::GetFlag(FLAGS_frames));
  auto data = ReadFile(path);
  if (!data.ok()) return data.status();
  if (model == "mel") {
    std::vector<int16_t> frames(data->size() / 2);
    std::memcpy(frames.data(), data->data(), frames.size() * 2);
    if (data->size() % 2 != 0) frames.clear();  // rejected with sizes below
    return Client::MelRequest(frames);
  }
  const size_t third = data->size() / 3;
  if (third * 3 != data->size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "'%s' has %d bytes; attention input is q, k, v of equal size", path,
        data->size()));
  }
  auto span = [&](size_t i) {
    return absl::Span<const int8_t>(
        reinterpret_cast<const int8_t*>(data->data()) + i * third, third);
  };
  return Client::AttentionRequest(span(0), span(1), span(2),
                                  absl::GetFlag(FLAGS_score_scale));
}

void PrintTiming(const Timing& t) {
  std::cout << absl::StrFormat(
      "timing: round trip %.0f us, server %.0f us (queue %.0f, compute "
      "%.0f), batch %d, backend %s\n",
      absl::ToDoubleMicroseconds(t.round_trip),
      absl::ToDoubleMicroseconds(t.server), absl::ToDoubleMicroseconds(t.queue),
      absl::ToDoubleMicroseconds(t.compute), t.batch_frames, t.backend);
}

int Infer(Client& c) {
  if (!absl::GetFlag(FLAGS_wav).empty()) {
    auto audio = ReadWav16kMono(absl::GetFlag(FLAGS_wav));
    if (!audio.ok()) return Report(audio.status(), "reading WAV");
    auto mel = c.LogMelSpectrogram(*audio);
    if (!mel.ok()) return Report(mel.status(), "log-mel spectrogram");
    const auto [lo, hi] =
        std::minmax_element(mel->features.begin(), mel->features.end());
    std::cout << absl::StrFormat(
        "log-mel features [80, %d] (Whisper units), min %.3f max %.3f\n",
        mel->frames, *lo, *hi);
    PrintTiming(mel->timing);
    const std::string out = absl::GetFlag(FLAGS_output);
    if (!out.empty()) {
      std::ofstream f(out, std::ios::binary);
      f.write(reinterpret_cast<const char*>(mel->features.data()),
              mel->features.size() * sizeof(float));
      if (!f) return Report(absl::InternalError("write failed"), out);
      std::cout << "wrote float32 [80, " << mel->frames << "] to " << out
                << "\n";
    }
    return kOk;
  }
  auto req = RequestFromFlags();
  if (!req.ok()) return Report(req.status(), "building the request");
  auto r = c.Infer(*req);
  if (!r.ok()) return Report(r.status(), "infer " + req->model_name());
  for (int i = 0; i < r->response.outputs_size(); ++i) {
    const auto& o = r->response.outputs(i);
    const std::string& raw = r->response.raw_output_contents(i);
    std::cout << o.name() << " " << o.datatype() << Shape(o.shape()) << ":";
    for (size_t b = 0; b < std::min<size_t>(raw.size(), 16); ++b) {
      std::cout << " " << static_cast<int>(static_cast<int8_t>(raw[b]));
    }
    std::cout << (raw.size() > 16 ? " ...\n" : "\n");
  }
  PrintTiming(r->timing);
  const std::string out = absl::GetFlag(FLAGS_output);
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    for (const auto& raw : r->response.raw_output_contents()) f << raw;
    if (!f) return Report(absl::InternalError("write failed"), out);
  }
  return kOk;
}

// Sends the golden input of `model` and compares the answer byte for byte.
absl::Status DeepCheck(Client& c, const std::string& model) {
#if NPUK_HAVE_GOLDEN
  absl::StatusOr<inference::ModelInferRequest> req;
  absl::Span<const uint8_t> expect;
  if (model == "mel") {
    const auto g = golden::Mel();
    expect = absl::MakeConstSpan(g.output.data(), g.output.size());
    req = Client::MelRequest(
        absl::MakeConstSpan(reinterpret_cast<const int16_t*>(g.input.data()),
                            g.input.size() / sizeof(int16_t)));
  } else if (model == "attention") {
    const auto g = golden::Attention();
    expect = absl::MakeConstSpan(g.output.data(), g.output.size());
    // The golden input is in device layout, q|k|v per tile; the wire wants
    // each tensor whole.
    constexpr size_t kTile = kTileDim * kTileDim;
    std::vector<int8_t> q(g.items * kTile), k(q.size()), v(q.size());
    for (size_t t = 0; t < g.items; ++t) {
      const uint8_t* src = g.input.data() + t * 3 * kTile;
      std::memcpy(q.data() + t * kTile, src, kTile);
      std::memcpy(k.data() + t * kTile, src + kTile, kTile);
      std::memcpy(v.data() + t * kTile, src + 2 * kTile, kTile);
    }
    // multiplier * 2^(shift - 31) is exact in a double and quantises back to
    // the same pair, so the daemon runs the golden scale bit for bit.
    req = Client::AttentionRequest(
        q, k, v, std::ldexp(g.scale.multiplier, g.scale.shift - 31));
  } else {
    return absl::OkStatus();  // no golden vector for this service
  }
  if (!req.ok()) return req.status();
  auto r = c.Infer(*req);
  if (!r.ok()) return r.status();
  if (r->response.raw_output_contents_size() != 1) {
    return absl::DataLossError("golden answer has no raw output");
  }
  const std::string& got = r->response.raw_output_contents(0);
  if (got.size() != expect.size()) {
    return absl::DataLossError(absl::StrFormat(
        "golden answer is %d bytes, expected %d", got.size(), expect.size()));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (static_cast<uint8_t>(got[i]) != expect[i]) {
      return absl::DataLossError(absl::StrFormat(
          "golden answer differs at byte %d: got %d, expected %d", i,
          static_cast<int8_t>(got[i]), static_cast<int8_t>(expect[i])));
    }
  }
  return absl::OkStatus();
#else
  (void)c;
  (void)model;
  return absl::UnimplementedError(
      "this npukctl was built without the golden vectors (target "
      "npuk_golden); rebuild it from the full source tree");
#endif
}

int Health(Client& c) {
  std::vector<std::string> services;
  const std::string flag = absl::GetFlag(FLAGS_model);
  if (flag.empty()) {
    auto names = ModelNames(c);
    if (!names.ok()) return Report(names.status(), "listing models");
    services.push_back("");
    services.insert(services.end(), names->begin(), names->end());
  } else {
    services = absl::StrSplit(flag, ',', absl::SkipEmpty());
  }
  int rc = kOk;
  std::vector<std::string> json;
  for (const std::string& svc : services) {
    const std::string label = svc.empty() ? "(server)" : svc;
    auto st = c.Health(svc);
    std::string state, detail;
    if (!st.ok()) {
      if (Unreachable(st.status())) return Report(st.status(), "health");
      state = st.status().code() == absl::StatusCode::kNotFound
                  ? "SERVICE_UNKNOWN"
                  : "ERROR";
      detail = st.status().ToString();
      rc = kFail;
    } else {
      state = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*st);
      if (*st != grpc::health::v1::HealthCheckResponse::SERVING) rc = kFail;
    }
    if (absl::GetFlag(FLAGS_deep) && !svc.empty() && rc == kOk) {
      absl::Status deep = DeepCheck(c, svc);
      if (Unreachable(deep)) return Report(deep, "golden check of " + svc);
      if (!deep.ok()) {
        rc = kFail;
        state = "GOLDEN_MISMATCH";
        detail = std::string(deep.message());
      } else {
        detail = "golden output matches";
      }
    }
    if (absl::GetFlag(FLAGS_json)) {
      json.push_back(absl::StrFormat(
          "{\"service\": \"%s\", \"status\": \"%s\", \"detail\": \"%s\"}", svc,
          state, absl::StrReplaceAll(detail, {{"\"", "'"}})));
    } else {
      std::cout << absl::StrFormat("%-10s %s%s\n", label, state,
                                   detail.empty() ? "" : "  " + detail);
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "[" << absl::StrJoin(json, ", ") << "]\n";
  }
  return rc;
}

int Stats(Client& c) {
  auto st = c.Statistics(absl::GetFlag(FLAGS_model));
  if (!st.ok()) return Report(st.status(), "statistics");
  std::vector<std::string> json;
  if (!absl::GetFlag(FLAGS_json)) {
    std::cout << absl::StrFormat("%-10s %10s %10s %8s %7s %11s %11s\n", "model",
                                 "frames", "runs", "requests", "failed",
                                 "queue us", "compute us");
  }
  for (const auto& m : st->model_stats()) {
    const auto& is = m.inference_stats();
    const double ok = static_cast<double>(is.success().count());
    const double mean_batch =
        m.execution_count()
            ? static_cast<double>(m.inference_count()) / m.execution_count()
            : 0.0;
    const double queue_us = ok ? is.queue().ns() / ok / 1e3 : 0.0;
    const double runs = static_cast<double>(is.compute_infer().count());
    const double compute_us =
        runs ? (is.compute_input().ns() + is.compute_infer().ns() +
                is.compute_output().ns()) /
                   runs / 1e3
             : 0.0;
    if (absl::GetFlag(FLAGS_json)) {
      json.push_back(absl::StrFormat(
          "{\"model\": \"%s\", \"inference_count\": %d, \"execution_count\": "
          "%d, \"success\": %d, \"fail\": %d, \"mean_batch\": %.2f, "
          "\"mean_queue_us\": %.1f, \"mean_compute_us\": %.1f}",
          m.name(), m.inference_count(), m.execution_count(),
          is.success().count(), is.fail().count(), mean_batch, queue_us,
          compute_us));
    } else {
      std::cout << absl::StrFormat(
          "%-10s %10d %10d %8d %7d %11.1f %11.1f   mean batch %.1f\n", m.name(),
          m.inference_count(), m.execution_count(), is.success().count(),
          is.fail().count(), queue_us, compute_us, mean_batch);
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "[" << absl::StrJoin(json, ", ") << "]\n";
  }
  return kOk;
}

int Bench() {
  auto req = RequestFromFlags();
  if (!req.ok()) return Report(req.status(), "building the request");
  loadgen::Spec spec;
  spec.target = absl::GetFlag(FLAGS_target);
  spec.request = *std::move(req);
  spec.frames_per_request = spec.request.inputs(0).shape(0);
  spec.concurrency = absl::GetFlag(FLAGS_concurrency);
  spec.channels = absl::GetFlag(FLAGS_channels);
  spec.warmup = absl::GetFlag(FLAGS_warmup);
  spec.duration = absl::GetFlag(FLAGS_duration);
  spec.count = absl::GetFlag(FLAGS_count);
  spec.timeout = absl::GetFlag(FLAGS_timeout);
  const bool tty = ::isatty(STDERR_FILENO);
  auto report = loadgen::Run(spec, [&](const loadgen::Progress& p) {
    std::cerr << absl::StrFormat("%s%.0f s: %d calls done, %d failed%s",
                                 tty ? "\r" : "",
                                 absl::ToDoubleSeconds(p.elapsed), p.completed,
                                 p.errors, tty ? "   " : "\n");
  });
  if (tty) std::cerr << "\n";
  if (!report.ok()) return Report(report.status(), "bench");
  std::cout << (absl::GetFlag(FLAGS_json) ? loadgen::FormatJson(spec, *report)
                                          : loadgen::FormatText(spec, *report));
  return report->errors == 0 ? kOk : kFail;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "npukctl " << kUsage
              << "\nrun `npukctl --help` for every flag\n";
    return kFail;
  }
  const std::string cmd = args[1];
  if (cmd == "bench") return Bench();
  auto client = Connect();
  if (!client.ok()) return Report(client.status(), "connecting");
  if (cmd == "models") return Models(**client);
  if (cmd == "infer") return Infer(**client);
  if (cmd == "health") return Health(**client);
  if (cmd == "stats") return Stats(**client);
  std::cerr << "npukctl: unknown command '" << cmd
            << "'; commands are models, infer, health, stats, bench (see "
               "npukctl --help)\n";
  return kFail;
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) { return npuk::Main(argc, argv); }
