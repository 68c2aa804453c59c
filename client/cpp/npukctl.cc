// npukctl: talk to npukd from a shell. Subcommands models, infer, health,
// stats, bench; see kUsage.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
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
#include "client/cpp/golden_request.h"
#include "client/cpp/loadgen.h"
#include "client/cpp/log_mel.h"
#include "client/cpp/model_info.h"
#include "client/cpp/target.h"
#include "client/cpp/wav.h"
#include "kernels/registry/registry.h"
#include "npuk_version.h"
#include "server/common/cli.h"
#include "server/common/status_macros.h"

ABSL_FLAG(std::string, target, "",
          "daemon address, unix:PATH or HOST:PORT (default: $NPUK_TARGET, "
          "else the daemon's default unix socket)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "deadline of each call");
ABSL_FLAG(std::string, model, "",
          "model to use, one of those `npukctl models` lists (health: a "
          "comma-separated list; default all models)");
ABSL_FLAG(bool, deep, false,
          "health: also send each model's golden input and compare the "
          "answer byte for byte");
ABSL_FLAG(bool, json, false, "print JSON instead of text");
ABSL_FLAG(int64_t, items, 1,
          "infer, bench: items per request (the model's unit: frames, tiles, "
          "blocks) when the input is random");
ABSL_FLAG(int64_t, frames, 0, "the same as --items (kept for scripts)");
ABSL_FLAG(int64_t, length, 64,
          "infer, bench: the length of a random input's variable dims "
          "(attention's sequence lengths Lq and Lk)");
ABSL_FLAG(int32_t, concurrency, 1, "bench: calls kept in flight");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "bench: how long to measure (ignored when --count is set)");
ABSL_FLAG(int64_t, count, 0, "bench: stop after this many requests");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(500),
          "bench: unmeasured warm-up before measuring");
ABSL_FLAG(int32_t, channels, 1, "bench: connections to spread calls over");
ABSL_FLAG(std::vector<std::string>, input, {},
          "infer, bench: NAME=FILE, the raw little-endian bytes of input NAME "
          "(comma-separated, one per input); or one FILE holding every input "
          "one after the other, in the order `npukctl models` lists them. "
          "Default: random data of --items items");
ABSL_FLAG(std::vector<std::string>, param, {},
          "infer, bench: NAME=VALUE request parameters (comma-separated), "
          "typed as the model declares them (see `npukctl models`)");
ABSL_FLAG(std::string, wav, "",
          "infer: Whisper log-mel features of this 16 kHz WAV file, through "
          "the log_mel model (ignores --model)");
ABSL_FLAG(int32_t, n_mels, 80,
          "infer --wav: mel bands, 80 or 128 (Whisper large-v3)");
ABSL_FLAG(int64_t, padding, 0,
          "infer --wav: trailing zero samples, as whisper's padding argument "
          "(480000 in transcribe)");
ABSL_FLAG(std::string, output, "",
          "infer: write the raw output bytes here (every output, in order)");
ABSL_FLAG(std::string, tls_ca, "", "PEM roots to verify a TLS daemon");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mutual TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM client key (mutual TLS)");

namespace npuk {
namespace {

constexpr char kUsage[] =
    R"(npukctl talks to the npukd inference daemon.

usage: npukctl [--target=unix:PATH|HOST:PORT] COMMAND [flags]
       npukctl COMMAND --help    the command's flags
       npukctl --version

commands:
  models   list models, their state, tensors, parameters and per-request
           maximum
  infer    run one request on any model
  health   grpc.health.v1 status; exit 0 all SERVING, 1 one is not,
           2 daemon unreachable
  stats    per-model statistics (inference/execution counts, mean batch,
           queue and compute time)
  bench    load test; progress on stderr

examples:
  npukctl health --deep
  npukctl infer --model=passthrough --items=2 --output=out.bin
  npukctl infer --model=attention --input=q=q.bin,k=k.bin,v=v.bin \
      --param=score_scale=0.01
  npukctl infer --wav=speech.wav
  npukctl bench --model=mel --items=100 --concurrency=4 --duration=5s

exit codes: 0 success, 1 the request or check failed, 2 usage error or
daemon unreachable.
)";

// One subcommand: what `npukctl COMMAND --help` prints.
struct Command {
  const char* name;
  const char* usage;
  std::vector<std::string> flags;  // its own flags, in --help order
};

// Flags every command takes (connection and output).
const std::vector<std::string>& CommonFlags() {
  static const auto* flags = new std::vector<std::string>{
      "target", "timeout", "tls_ca", "tls_cert", "tls_key"};
  return *flags;
}

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"models",
       "usage: npukctl models [--json]\n"
       "Lists every model the daemon serves: state, tensors with datatype "
       "and shape,\nrequest parameters and the per-request maximum.\n",
       {"json"}},
      {"infer",
       "usage: npukctl infer --model=NAME [--items=N]\n"
       "         [--input=NAME=FILE,... | --input=FILE] "
       "[--param=NAME=VALUE,...]\n"
       "         [--output=FILE]\n"
       "       npukctl infer --wav=FILE.wav [--n_mels=80|128] [--padding=N]\n"
       "Runs one request. Inputs default to random data shaped from the "
       "model's\nmetadata; prints a preview of each output and the server's "
       "timing.\n",
       {"model", "items", "frames", "input", "param", "output", "wav", "n_mels",
        "padding"}},
      {"health",
       "usage: npukctl health [--model=NAME,...] [--deep] [--json]\n"
       "grpc.health.v1 status of the server and each model; --deep also "
       "sends\neach model's golden input and compares the answer byte for "
       "byte.\nExit 0 all SERVING, 1 one is not, 2 daemon unreachable.\n",
       {"model", "deep", "json"}},
      {"stats",
       "usage: npukctl stats [--model=NAME] [--json]\n"
       "Per-model statistics: items, device runs, requests, failures, mean "
       "queue\nand compute time, mean batch.\n",
       {"model", "json"}},
      {"bench",
       "usage: npukctl bench --model=NAME [--items=N] [--concurrency=N]\n"
       "         [--channels=N] [--input=...] [--param=...]\n"
       "         [--duration=10s | --count=N] [--warmup=500ms] [--json]\n"
       "Load test: requests/s and latency percentiles; progress on stderr.\n",
       {"model", "items", "concurrency", "channels", "input", "param",
        "duration", "count", "warmup", "json"}},
  };
  return *commands;
}

const Command* FindCommand(std::string_view name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::string CommandNames() {
  std::vector<std::string> names;
  for (const Command& c : Commands()) names.emplace_back(c.name);
  return absl::StrJoin(names, ", ");
}

cli::Program NpukctlProgram() {
  return {.name = "npukctl",
          .usage = kUsage,
          .flag_files = {"client/cpp/npukctl.cc"}};
}

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
    NPUK_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(ca));
    if (!absl::GetFlag(FLAGS_tls_cert).empty()) {
      NPUK_ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                            ReadFile(absl::GetFlag(FLAGS_tls_cert)));
      NPUK_ASSIGN_OR_RETURN(ssl.pem_private_key,
                            ReadFile(absl::GetFlag(FLAGS_tls_key)));
    }
    o.credentials = grpc::SslCredentials(ssl);
  }
  return Client::Connect(o);
}

template <typename Dims>
std::string Shape(const Dims& s) {
  return absl::StrCat("[", absl::StrJoin(s, ","), "]");
}

// A JSON string literal of `s`.
std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// Model names from RepositoryIndex, so new models need no change here.
absl::StatusOr<std::vector<std::string>> ModelNames(Client& c) {
  NPUK_ASSIGN_OR_RETURN(inference::RepositoryIndexResponse idx, c.Repository());
  std::vector<std::string> names;
  for (const auto& m : idx.models()) names.push_back(m.name());
  return names;
}

int Models(Client& c) {
  auto idx = c.Repository();
  if (!idx.ok()) return Report(idx.status(), "listing models");
  std::vector<std::string> json;
  for (const auto& m : idx->models()) {
    auto info = c.Describe(m.name());
    if (!info.ok()) return Report(info.status(), "describing " + m.name());
    auto tensors = [](const std::vector<TensorInfo>& list) {
      std::vector<std::string> out;
      for (const TensorInfo& t : list) {
        out.push_back(absl::StrCat(t.name, " ", t.datatype, "[-1",
                                   t.item_dims.empty() ? "" : ",",
                                   absl::StrJoin(t.item_dims, ","), "]"));
      }
      return out;
    };
    const std::vector<std::string> ins = tensors(info->inputs);
    const std::vector<std::string> outs = tensors(info->outputs);
    if (absl::GetFlag(FLAGS_json)) {
      std::vector<std::string> quoted_ins, quoted_outs, params;
      for (const auto& t : ins) quoted_ins.push_back(JsonQuote(t));
      for (const auto& t : outs) quoted_outs.push_back(JsonQuote(t));
      for (const ParamInfo& p : info->params) {
        params.push_back(
            absl::StrCat(JsonQuote(p.name), ": ", JsonQuote(p.doc)));
      }
      json.push_back(absl::StrFormat(
          "{\"name\": %s, \"state\": %s, \"reason\": %s, \"max_frames\": %d, "
          "\"max_items\": %d, \"inputs\": [%s], \"outputs\": [%s], "
          "\"parameters\": {%s}}",
          JsonQuote(m.name()), JsonQuote(m.state()), JsonQuote(m.reason()),
          info->max_items, info->max_items, absl::StrJoin(quoted_ins, ", "),
          absl::StrJoin(quoted_outs, ", "), absl::StrJoin(params, ", ")));
    } else {
      std::string params;
      for (const ParamInfo& p : info->params) {
        absl::StrAppend(&params, "\n             param ", p.name,
                        p.doc.empty() ? "" : ": " + p.doc);
      }
      std::cout << absl::StrFormat(
          "%-12s %-10s max %d per request  in: %s  out: %s%s%s\n", m.name(),
          m.state(), info->max_items, absl::StrJoin(ins, ", "),
          absl::StrJoin(outs, ", "),
          m.reason().empty() ? "" : "  (" + m.reason() + ")", params);
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "[" << absl::StrJoin(json, ", ") << "]\n";
  }
  return kOk;
}

int64_t ItemsFlag() {
  const int64_t frames = absl::GetFlag(FLAGS_frames);
  return frames != 0 ? frames : absl::GetFlag(FLAGS_items);
}

// The inputs --input names, or random ones of --items items.
absl::StatusOr<Tensors> InputsFromFlags(const ModelInfo& info) {
  const std::vector<std::string> specs = absl::GetFlag(FLAGS_input);
  if (specs.empty()) {
    if (ItemsFlag() < 1) {
      return absl::InvalidArgumentError("--items must be at least 1");
    }
    if (absl::GetFlag(FLAGS_length) < 1) {
      return absl::InvalidArgumentError("--length must be at least 1");
    }
    return RandomInputs(info, ItemsFlag(), 7, absl::GetFlag(FLAGS_length));
  }
  const size_t eq = specs[0].find('=');
  if (specs.size() == 1 &&
      (eq == std::string::npos ||
       (info.FindInput(specs[0].substr(0, eq)) == nullptr &&
        std::ifstream(specs[0]).good()))) {
    // One file, not NAME=FILE: every input, one after the other.
    NPUK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(specs[0]));
    return SplitConcatenatedInputs(info, bytes);
  }
  Tensors out;
  for (const std::string& spec : specs) {
    const size_t sep = spec.find('=');
    if (sep == std::string::npos ||
        info.FindInput(spec.substr(0, sep)) == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "--input=%s: give NAME=FILE for each input of model '%s' (%s), or "
          "one FILE holding them all in that order",
          spec, info.name, info.InputNames()));
    }
    NPUK_ASSIGN_OR_RETURN(out[spec.substr(0, sep)].data,
                          ReadFile(spec.substr(sep + 1)));
  }
  return out;
}

absl::StatusOr<Parameters> ParamsFromFlags(const ModelInfo& info) {
  Parameters out;
  for (const std::string& assignment : absl::GetFlag(FLAGS_param)) {
    NPUK_ASSIGN_OR_RETURN(auto p, ParseParameter(info, assignment));
    out[p.first] = std::move(p.second);
  }
  return out;
}

absl::StatusOr<std::string> ModelFlag(Client& c) {
  const std::string model = absl::GetFlag(FLAGS_model);
  if (!model.empty()) return model;
  auto names = ModelNames(c);
  return absl::InvalidArgumentError(absl::StrCat(
      "--model is required; the daemon serves ",
      names.ok() ? absl::StrJoin(*names, ", ") : "(cannot list models)",
      " (see `npukctl models`)"));
}

// The request --model, --input/--items and --param describe, built from the
// model's metadata.
absl::StatusOr<inference::ModelInferRequest> RequestFromFlags(Client& c) {
  NPUK_ASSIGN_OR_RETURN(const std::string model, ModelFlag(c));
  NPUK_ASSIGN_OR_RETURN(const ModelInfo info, c.Describe(model));
  NPUK_ASSIGN_OR_RETURN(const Tensors inputs, InputsFromFlags(info));
  NPUK_ASSIGN_OR_RETURN(const Parameters params, ParamsFromFlags(info));
  return BuildRequest(info, inputs, params);
}

void PrintTiming(const Timing& t) {
  std::cout << absl::StrFormat(
      "timing: round trip %.0f us, server %.0f us (queue %.0f, compute "
      "%.0f), batch %d, backend %s\n",
      absl::ToDoubleMicroseconds(t.round_trip),
      absl::ToDoubleMicroseconds(t.server), absl::ToDoubleMicroseconds(t.queue),
      absl::ToDoubleMicroseconds(t.compute), t.batch_frames, t.backend);
}

// The typed Whisper convenience: log-mel features of a WAV file.
int InferWav(Client& c) {
  auto audio = ReadWav16kMono(absl::GetFlag(FLAGS_wav));
  if (!audio.ok()) return Report(audio.status(), "reading WAV");
  auto mel = c.LogMelSpectrogram(absl::Span<const float>(*audio),
                                 {.n_mels = absl::GetFlag(FLAGS_n_mels),
                                  .padding = absl::GetFlag(FLAGS_padding)});
  if (!mel.ok()) return Report(mel.status(), "log-mel spectrogram");
  const auto [lo, hi] =
      std::minmax_element(mel->features.begin(), mel->features.end());
  std::cout << absl::StrFormat(
      "log-mel features [%d, %d] (Whisper units), min %.3f max %.3f\n",
      mel->n_mels, mel->frames, *lo, *hi);
  PrintTiming(mel->timing);
  const std::string out = absl::GetFlag(FLAGS_output);
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(mel->features.data()),
            mel->features.size() * sizeof(float));
    if (!f) return Report(absl::InternalError("write failed"), out);
    std::cout << "wrote float32 [" << mel->n_mels << ", " << mel->frames
              << "] to " << out << "\n";
  }
  return kOk;
}

int Infer(Client& c) {
  if (!absl::GetFlag(FLAGS_wav).empty()) return InferWav(c);
  auto req = RequestFromFlags(c);
  if (!req.ok()) return Report(req.status(), "building the request");
  auto r = c.Infer(*req);
  if (!r.ok()) return Report(r.status(), "infer " + req->model_name());
  auto outputs = OutputsOf(r->response);
  if (!outputs.ok()) {
    return Report(outputs.status(), "infer " + req->model_name());
  }
  // In the daemon's order, which is the model's.
  for (const auto& o : r->response.outputs()) {
    const Tensor& t = outputs->at(o.name());
    std::cout << o.name() << " " << t.datatype << Shape(t.shape) << ": "
              << PreviewValues(t) << "\n";
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

// Sends the golden input the kernel registry holds for `model` (the one the
// daemon's canaries replay) over the wire and compares the answer byte for
// byte. False when no kernel of that name has a golden vector.
absl::StatusOr<bool> DeepCheck(Client& c, const std::string& model) {
  const KernelSpec* kernel = FindKernel(model);
  if (kernel == nullptr || kernel->golden.items == 0) return false;
  NPUK_ASSIGN_OR_RETURN(const GoldenRequest g, GoldenRequestFor(*kernel));
  NPUK_ASSIGN_OR_RETURN(const TensorsResult r,
                        c.Infer(model, g.inputs, g.params));
  NPUK_RETURN_IF_ERROR(CompareGolden(g, r.outputs));
  return true;
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
    bool serving = false;
    if (!st.ok()) {
      if (Unreachable(st.status())) return Report(st.status(), "health");
      state = st.status().code() == absl::StatusCode::kNotFound
                  ? "SERVICE_UNKNOWN"
                  : "ERROR";
      detail = st.status().ToString();
      rc = kFail;
    } else {
      state = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(*st);
      serving = *st == grpc::health::v1::HealthCheckResponse::SERVING;
      if (!serving) rc = kFail;
    }
    if (absl::GetFlag(FLAGS_deep) && !svc.empty() && serving) {
      absl::StatusOr<bool> deep = DeepCheck(c, svc);
      if (!deep.ok() && Unreachable(deep.status())) {
        return Report(deep.status(), "golden check of " + svc);
      }
      if (!deep.ok()) {
        rc = kFail;
        state = "GOLDEN_MISMATCH";
        detail = std::string(deep.status().message());
      } else {
        detail =
            *deep ? "golden output matches" : "no golden vector to compare";
      }
    }
    if (absl::GetFlag(FLAGS_json)) {
      json.push_back(
          absl::StrFormat("{\"service\": %s, \"status\": %s, \"detail\": %s}",
                          JsonQuote(svc), JsonQuote(state), JsonQuote(detail)));
    } else {
      std::cout << absl::StrFormat("%-12s %s%s\n", label, state,
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
    std::cout << absl::StrFormat("%-12s %10s %10s %8s %7s %11s %11s\n", "model",
                                 "items", "runs", "requests", "failed",
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
          "{\"model\": %s, \"inference_count\": %d, \"execution_count\": "
          "%d, \"success\": %d, \"fail\": %d, \"mean_batch\": %.2f, "
          "\"mean_queue_us\": %.1f, \"mean_compute_us\": %.1f}",
          JsonQuote(m.name()), m.inference_count(), m.execution_count(),
          is.success().count(), is.fail().count(), mean_batch, queue_us,
          compute_us));
    } else {
      std::cout << absl::StrFormat(
          "%-12s %10d %10d %8d %7d %11.1f %11.1f   mean batch %.1f\n", m.name(),
          m.inference_count(), m.execution_count(), is.success().count(),
          is.fail().count(), queue_us, compute_us, mean_batch);
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << "[" << absl::StrJoin(json, ", ") << "]\n";
  }
  return kOk;
}

int Bench(Client& c) {
  auto req = RequestFromFlags(c);
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

// `npukctl [COMMAND] --help`: the command's usage and flags, or the global
// help without a command (unknown commands get the global help too).
int Help(int argc, char** argv) {
  const Command* command = nullptr;
  for (const std::string& arg : cli::Positionals(argc, argv)) {
    command = FindCommand(arg);
    if (command != nullptr) break;
  }
  if (command == nullptr) {
    cli::Program program = NpukctlProgram();
    std::cout << program.usage << "\nflags:\n"
              << cli::DescribeProgramFlags(program);
    return kOk;
  }
  std::cout << command->usage << "\nflags:\n"
            << cli::DescribeFlags(command->flags)
            << "\nconnection flags (every command):\n"
            << cli::DescribeFlags(CommonFlags());
  return kOk;
}

int Main(int argc, char** argv) {
  const cli::Program program = NpukctlProgram();
  if (std::optional<std::string> early = cli::FindEarlyFlag(argc, argv)) {
    if (*early != "version") return Help(argc, argv);
  }
  if (std::optional<int> code =
          cli::HandleEarly(program, argc, argv, std::cout, std::cerr)) {
    return *code;
  }
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "npukctl: "
              << (args.size() < 2 ? "no command given"
                                  : absl::StrCat("one command expected, got ",
                                                 args.size() - 1))
              << "; commands are " << CommandNames()
              << " (run `npukctl --help`)\n";
    return cli::kUsageError;
  }
  const std::string cmd = args[1];
  if (FindCommand(cmd) == nullptr) {
    std::cerr << "npukctl: unknown command '" << cmd.substr(0, 64)
              << "'; commands are " << CommandNames()
              << " (run `npukctl --help`)\n";
    return cli::kUsageError;
  }
  auto client = Connect();
  if (!client.ok()) return Report(client.status(), "connecting");
  if (cmd == "models") return Models(**client);
  if (cmd == "infer") return Infer(**client);
  if (cmd == "health") return Health(**client);
  if (cmd == "stats") return Stats(**client);
  return Bench(**client);
}

}  // namespace
}  // namespace npuk

int main(int argc, char** argv) { return npuk::Main(argc, argv); }
