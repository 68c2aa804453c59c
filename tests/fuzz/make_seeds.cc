// Writes the seed corpus under tests/fuzz/corpus/ (committed; rerun only to
// regenerate): valid and nearly valid requests for the models, the runtime
// sequences of every registered kernel, and small configs. Usage:
// npuk_fuzz_seeds <corpus dir>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "grpc_service.pb.h"
#include "kernels/registry/registry.h"
#include "kernels/tools/txn/designs.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

inference::ModelInferRequest Mel(int frames) {
  inference::ModelInferRequest r;
  r.set_model_name("mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(frames);
  in->add_shape(400);
  std::string raw(static_cast<size_t>(frames) * 800, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 7);
  r.add_raw_input_contents(raw);
  return r;
}

inference::ModelInferRequest Attention() {
  inference::ModelInferRequest r;
  r.set_model_name("attention");
  for (const char* name : {"q", "k", "v"}) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype("INT8");
    in->add_shape(1);
    in->add_shape(64);
    in->add_shape(64);
    r.add_raw_input_contents(std::string(4096, '\x03'));
  }
  (*r.mutable_parameters())["score_scale"].set_double_param(0.125);
  return r;
}

inference::ModelInferRequest Passthrough(int blocks) {
  inference::ModelInferRequest r;
  r.set_model_name("passthrough");
  auto* in = r.add_inputs();
  in->set_name("in");
  in->set_datatype("INT8");
  in->add_shape(blocks);
  in->add_shape(4096);
  std::string raw(static_cast<size_t>(blocks) * 4096, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 13);
  r.add_raw_input_contents(raw);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];

  // request/: serialized ModelInferRequest.
  Write(dir + "/request/mel_1", Mel(1).SerializeAsString());
  {
    inference::ModelInferRequest r = Mel(1);
    r.set_id("req-7");
    r.set_model_version("1");
    (*r.mutable_parameters())["timeout"].set_int64_param(1000);
    r.add_outputs()->set_name("log_mel");
    Write(dir + "/request/mel_params", r.SerializeAsString());
  }
  {
    inference::ModelInferRequest r = Mel(1);
    r.clear_raw_input_contents();
    for (int i = 0; i < 400; ++i) {
      r.mutable_inputs(0)->mutable_contents()->add_int_contents(i * 80 - 16000);
    }
    Write(dir + "/request/mel_typed", r.SerializeAsString());
  }
  {
    inference::ModelInferRequest r = Mel(1);
    r.mutable_inputs(0)->set_shape(0, -1);
    r.mutable_inputs(0)->set_datatype("FP32");
    Write(dir + "/request/mel_bad", r.SerializeAsString());
  }
  Write(dir + "/request/attention_1", Attention().SerializeAsString());
  {
    inference::ModelInferRequest r = Attention();
    r.mutable_inputs(2)->set_name("q");
    (*r.mutable_parameters())["score_scale"].set_string_param("x");
    Write(dir + "/request/attention_bad", r.SerializeAsString());
  }

  Write(dir + "/request/passthrough_2", Passthrough(2).SerializeAsString());

  // txn/: selector byte (bits 0-1: kernel index in the registry; bits 2-7:
  // batch size index; see txn_fuzzer.cc) + insts.
  const std::vector<uint32_t>& sizes = npuk::txn::StandardBatchSizes();
  const auto kernels = npuk::AllKernels();
  for (size_t k = 0; k < kernels.size() && k < 4; ++k) {
    const npuk::txn::Design design = npuk::txn::DesignFor(*kernels[k]);
    for (size_t i = 0; i < sizes.size() && i < 3; ++i) {
      absl::StatusOr<std::vector<uint32_t>> words =
          npuk::txn::BuildSequence(design, sizes[i]);
      if (!words.ok()) return 1;
      std::string bytes(1, static_cast<char>(k | (i << 2)));
      bytes.append(reinterpret_cast<const char*>(words->data()),
                   words->size() * 4);
      Write(dir + "/txn/" + design.kernel + "_" + std::to_string(sizes[i]),
            bytes);
    }
  }

  // config/: text-format npuk.config.Config.
  Write(dir + "/config/empty", "");
  Write(dir + "/config/full",
        "listen: \"unix:/run/npukd/npukd.sock\"\n"
        "backend: \"npu-sim\"\n"
        "metrics_listen: \"127.0.0.1:9464\"\n"
        "drain_timeout_ms: 10000\nhealth_interval_ms: 5000\n"
        "socket_mode: 0660\nmax_message_bytes: 67108864\ncpu_threads: 4\n"
        "models { name: \"mel\" max_batch_frames: 3072 max_queue_delay_us: "
        "500 max_queue_size: 1024 instances: 2 }\n"
        "models { name: \"attention\" enabled: false }\n"
        "npu_sim { run_latency_us: 110 realtime: false }\n"
        "xrt { run_timeout_ms: 2000 use_runlist: true }\n"
        "tls { cert_file: \"a.pem\" key_file: \"b.pem\" }\n"
        "faults: \"mel:zeros:0.5\"\n");
  Write(dir + "/config/bad",
        "models { name: \"whisper\" }\nmodels { name: \"mel\" "
        "max_batch_frames: 99999999 }\n");
  return 0;
}
