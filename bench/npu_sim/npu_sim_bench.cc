// SIMULATED kernel throughput on the NPU path: the real xrt backend code
// on npu-sim, with core compute priced by the AIE2 cycle model
// (kernels/vec/cycle_model.h) from the operation counts of the kernel code
// the cores run, the vector kernels or today's scalar entries. Every figure
// is modelled (no NPU here): launch, command floor and DMA from npu-sim's
// Phoenix model, compute from the cycle model at 1.024 GHz.
//
// Usage: npuk_npu_sim_bench [--json] [--items=1024]
//   --json: one JSON object per line: kernel, variant, batch, cores,
//   columns (the kernel's design, KernelSpec::design), cycles_per_item (one
//   core, from the op counts), items_per_s (modelled) and, for mel, realtime_x
//   (100 frames = 1 s).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/attention_stream/attention_stream_units.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/registry.h"
#include "kernels/vec/cycle_model.h"
#include "npusim/machine.h"
#include "server/device/npu_sim/npu_sim_device.h"
#include "spdlog/spdlog.h"

namespace {

constexpr double kFramesPerAudioSecond = 100.0;  // 10 ms hop

struct Row {
  std::string kernel;
  std::string_view variant;
  size_t batch;
  int cores;
  int columns;
  double cycles_per_item;
  double items_per_s;
  double compute_share;  // of the modelled device time
};

bool HasFlag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

size_t SizeFlag(int argc, char** argv, const char* name, size_t def) {
  const std::string prefix = std::string("--") + name + "=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) == 0) {
      return static_cast<size_t>(std::atoll(argv[i] + prefix.size()));
    }
  }
  return def;
}

// Fills every input argument with deterministic bytes and the parameter
// plane with the kernel's default parameters.
bool FillInputs(const npuk::KernelSpec& spec, npuk::Executor& ex) {
  std::vector<uint8_t> record(spec.param_bytes);
  if (spec.param_bytes > 0 &&
      !spec.encode_params(npuk::DefaultParams(spec), record).ok()) {
    return false;
  }
  for (size_t a = 0; a < spec.device_args.size(); ++a) {
    auto in = ex.input(a);
    const bool params = spec.param_bytes > 0 &&
                        spec.arg_bytes(a) == spec.param_bytes &&
                        a + 1 == spec.device_args.size();
    for (size_t i = 0; i < in.size(); ++i) {
      in[i] = params ? record[i % record.size()]
                     : static_cast<uint8_t>((i * 7919) % 251);
    }
  }
  return true;
}

// An npu-sim device that accounts the model without sleeping, its cores
// priced as `variant`; nullptr (the reason printed) when it cannot open.
std::unique_ptr<npuk::NpuSimDevice> ModelDevice(npuk::vec::Variant variant) {
  auto device = npuk::NewNpuSimDevice(npuk::config::Config());
  if (!device.ok()) {
    std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
    return nullptr;
  }
  npusim::Machine& m = (*device)->machine();
  npusim::Settings s = m.settings();
  s.realtime = false;  // account the model, do not sleep
  s.vector_kernels = variant == npuk::vec::Variant::kVector;
  m.Configure(s);
  return *std::move(device);
}

// The cores and columns are the kernel's design (KernelSpec::design), the
// one its package was built from and npu-sim runs.
int Measure(const npuk::KernelSpec& spec, npuk::vec::Variant variant,
            size_t batch, size_t items, Row* row) {
  auto device = ModelDevice(variant);
  if (device == nullptr) return 1;
  npusim::Machine& m = device->machine();
  auto ex = device->CreateExecutor(spec, 256);
  if (!ex.ok()) {
    std::fprintf(stderr, "%s\n", ex.status().ToString().c_str());
    return 1;
  }
  if (!FillInputs(spec, **ex)) return 1;
  m.ResetStats();
  const size_t runs = std::max<size_t>(1, items / batch);
  for (size_t i = 0; i < runs; ++i) {
    if (const absl::Status st = (*ex)->Run(batch); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
  }
  const npusim::Stats st = m.stats();
  const double seconds =
      absl::ToDoubleSeconds(st.modelled_device + st.modelled_sync);
  const npuk::vec::KernelCost cost = npuk::vec::CostOf(spec.name, variant);
  row->kernel = spec.name;
  row->variant = npuk::vec::VariantName(variant);
  row->batch = batch;
  row->cores = static_cast<int>(spec.design.cores);
  row->columns = static_cast<int>(spec.design.columns);
  row->cycles_per_item = cost.cycles_per_call / cost.items_per_call;
  row->items_per_s = static_cast<double>(runs * batch) / seconds;
  row->compute_share = absl::ToDoubleSeconds(st.modelled_compute) /
                       absl::ToDoubleSeconds(st.modelled_device);
  return 0;
}

struct SeqRow {
  size_t pairs = 0;
  size_t runs = 0;
  double seconds = 0;
  double compute_share = 0;
};

// One whole-sequence workload through the stream kernel's executor on
// npu-sim, cut into units and runs as the attention model cuts it
// (attention_stream_units.h, runs of default_max_batch units).
int MeasureSequence(const npuk::KernelSpec& spec, npuk::vec::Variant variant,
                    int heads, int lq, int lk, bool causal, SeqRow* row) {
  auto device = ModelDevice(variant);
  if (device == nullptr) return 1;
  npusim::Machine& m = device->machine();
  const size_t per_run = spec.default_max_batch;
  auto ex = device->CreateExecutor(spec, per_run);
  if (!ex.ok()) {
    std::fprintf(stderr, "%s\n", ex.status().ToString().c_str());
    return 1;
  }
  std::vector<int8_t> q(static_cast<size_t>(heads) * lq * 64);
  std::vector<int8_t> kv(static_cast<size_t>(heads) * lk * 64);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(i * 7919);
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = static_cast<int8_t>(i * 31);
  const npuk::stream::Problem p{q.data(),
                                kv.data(),
                                kv.data(),
                                heads,
                                lq,
                                lk,
                                causal,
                                npuk::QuantizeScoreScale(0.01),
                                npuk::online::QuantizeOutputScale(0.5)};
  m.ResetStats();
  const size_t units = npuk::stream::UnitCount(p);
  for (size_t first = 0; first < units; first += per_run) {
    const size_t count = std::min(per_run, units - first);
    const size_t items = npuk::stream::UnitItems(count);
    std::vector<uint8_t> qp(items * npuk::kStreamMatrixBytes);
    std::vector<uint8_t> rec(items * npuk::kStreamRecordBytes);
    std::vector<uint8_t> steps(npuk::stream::UnitStepBytes(p, first, count));
    npuk::stream::WriteUnits(p, first, count, qp.data(), rec.data(),
                             steps.data());
    const std::vector<std::span<const uint8_t>> planes = {qp, steps, rec};
    for (size_t a = 0; a < spec.device_args.size(); ++a) {
      npuk::GatherArg(spec, a, planes, 0, items, (*ex)->input(a).data());
    }
    if (const absl::Status st = (*ex)->Run(items); !st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    ++row->runs;
  }
  const npusim::Stats st = m.stats();
  row->pairs = static_cast<size_t>(heads) * npuk::SeqTilePairs(lq, lk, causal);
  row->seconds = absl::ToDoubleSeconds(st.modelled_device + st.modelled_sync);
  row->compute_share = absl::ToDoubleSeconds(st.modelled_compute) /
                       absl::ToDoubleSeconds(st.modelled_device);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = HasFlag(argc, argv, "--json");
  // Package-loading notices would interleave with the rows.
  spdlog::set_level(spdlog::level::warn);
  const size_t items = SizeFlag(argc, argv, "items", 1024);
  const std::vector<size_t> batches = {1, 16, 64, 256};
  if (!json) {
    std::printf(
        "SIMULATED (npu-sim Phoenix model: 110 us/run, 42 us command floor, "
        "8000 MB/s DMA; core compute from the AIE2 cycle model at %.3f GHz, "
        "kernels/vec/cycle_model.h)\n",
        npuk::vec::kAie2.clock_hz / 1e9);
    std::printf("%-10s %-7s %6s %6s %8s %14s %14s %10s %9s\n", "kernel",
                "variant", "batch", "cores", "columns", "cycles/item",
                "items/s", "realtime_x", "compute%");
  }
  for (const npuk::KernelSpec* spec : npuk::AllKernels()) {
    if (spec->name == "passthrough") continue;  // a transport test kernel
    // A stepped kernel's items take the steps their records give: priced
    // on whole-sequence workloads below.
    if (spec->is_stepped()) continue;
    for (npuk::vec::Variant variant :
         {npuk::vec::Variant::kVector, npuk::vec::Variant::kScalar}) {
      for (size_t batch : batches) {
        // The scalar kernels are ~100x slower: fewer items keep the run
        // short (the model is deterministic either way).
        Row r;
        if (Measure(*spec, variant, batch,
                    variant == npuk::vec::Variant::kScalar
                        ? std::max(batch, items / 16)
                        : items,
                    &r) != 0) {
          return 1;
        }
        // The mel family counts frames: 100 frames are 1 s of audio.
        const bool mel = spec->unit == "frame";
        if (json) {
          std::printf(
              "{\"kernel\":\"%s\",\"variant\":\"%s\",\"batch\":%zu,"
              "\"cores\":%d,\"columns\":%d,\"cycles_per_item\":%.1f,"
              "\"items_per_s\":%.1f",
              r.kernel.c_str(), std::string(r.variant).c_str(), r.batch,
              r.cores, r.columns, r.cycles_per_item, r.items_per_s);
          if (mel) {
            std::printf(",\"realtime_x\":%.2f",
                        r.items_per_s / kFramesPerAudioSecond);
          }
          std::printf(",\"simulated\":true}\n");
        } else {
          char rt[32] = "-";
          if (mel) {
            std::snprintf(rt, sizeof(rt), "%.1f",
                          r.items_per_s / kFramesPerAudioSecond);
          }
          std::printf("%-10s %-7s %6zu %6d %8d %14.0f %14.1f %10s %8.0f%%\n",
                      r.kernel.c_str(), std::string(r.variant).c_str(), r.batch,
                      r.cores, r.columns, r.cycles_per_item, r.items_per_s, rt,
                      100 * r.compute_share);
        }
      }
    }
  }
  // Attention over whole sequences on the design the daemon runs
  // (attention_stream: a query tile resident per core, its key tiles
  // streamed past it), through the xrt backend on npu-sim: the attention
  // model's units in runs of its default 16, compute by the cycle model per
  // step. Whisper base: 8 heads of 64 dims, 1500 encoder states, up to 448
  // decoder tokens.
  struct Workload {
    const char* name;
    int heads, lq, lk;
    bool causal;
  };
  const Workload workloads[] = {
      {"whisper_base_encoder_layer", 8, 1500, 1500, false},
      {"whisper_base_decoder_self_step", 8, 1, 448, true},
      {"whisper_base_decoder_cross_step", 8, 1, 1500, false},
      {"whisper_base_decoder_self_448", 8, 448, 448, true},
  };
  const npuk::KernelSpec* stream = npuk::FindKernel("attention_stream");
  if (stream == nullptr) return 1;
  if (!json) {
    std::printf(
        "\nattention_stream on npu-sim (1 column x 4 cores; runs of %u query "
        "tiles; tile pairs = (query tile, key tile) steps taken)\n",
        stream->default_max_batch);
    std::printf("%-32s %-7s %6s %10s %14s %12s %10s %9s\n", "workload",
                "variant", "heads", "tile_pairs", "tile_pairs/s", "runs", "ms",
                "compute%");
  }
  for (npuk::vec::Variant variant :
       {npuk::vec::Variant::kVector, npuk::vec::Variant::kScalar}) {
    for (const Workload& w : workloads) {
      SeqRow r;
      if (MeasureSequence(*stream, variant, w.heads, w.lq, w.lk, w.causal,
                          &r) != 0) {
        return 1;
      }
      if (json) {
        std::printf(
            "{\"kernel\":\"attention_stream\",\"variant\":\"%s\","
            "\"workload\":\"%s\",\"heads\":%d,\"lq\":%d,\"lk\":%d,"
            "\"causal\":%s,\"cores\":4,\"columns\":1,\"tile_pairs\":%zu,"
            "\"runs\":%zu,\"tile_pairs_per_s\":%.1f,\"ms\":%.4f,"
            "\"compute_share\":%.3f,\"simulated\":true}\n",
            std::string(npuk::vec::VariantName(variant)).c_str(), w.name,
            w.heads, w.lq, w.lk, w.causal ? "true" : "false", r.pairs, r.runs,
            static_cast<double>(r.pairs) / r.seconds, 1e3 * r.seconds,
            r.compute_share);
      } else {
        std::printf("%-32s %-7s %6d %10zu %14.0f %12zu %10.3f %8.0f%%\n",
                    w.name,
                    std::string(npuk::vec::VariantName(variant)).c_str(),
                    w.heads, r.pairs, static_cast<double>(r.pairs) / r.seconds,
                    r.runs, 1e3 * r.seconds, 100 * r.compute_share);
      }
    }
  }
  if (!json) {
    std::printf(
        "cycles/item: one core, from the counted operations; items/s: the "
        "whole modelled run (launch, DMA, compute over the design's `cores` "
        "x `columns` cores; a batch that is not a multiple of cores x "
        "columns runs padded to the next sequence size, and only its real "
        "items are counted). All SIMULATED.\n");
  }
  return 0;
}
