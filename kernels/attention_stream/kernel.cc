// The attention_stream kernel's declaration (kernels/registry/kernel_spec.h):
// one query tile of the whole-sequence attention (a "unit") against every
// key tile of its head it sees, streamed past the core one tile at a time.
// In: q INT8 [64, 64] and the unit's 40 B record (device argument 0), the
// key/value tiles as a stepped input (device argument 1: k then v, INT8
// [2, 64, 64] per step, rounds of 4 units step-major); out: the unit's
// final INT8 [64, 64] rows. Internal: the attention model writes the units
// and their records (server/models/attention_units.h); the score_scale
// parameter's encoding is one whole unmasked tile.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/attention/attention_seq.h"
#include "kernels/attention/attention_seq_request.h"
#include "kernels/attention_stream/attention_stream_kernel.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(attention_stream, in0);
NPUK_DECLARE_EMBEDDED(attention_stream, in1);
NPUK_DECLARE_EMBEDDED(attention_stream, out);

namespace npuk::kernels::attention_stream {
namespace {

AttentionStreamRecord RecordOf(const uint8_t* qrec) {
  AttentionStreamRecord r;
  std::memcpy(&r, qrec + kStreamMatrixBytes, sizeof(r));
  return ClampStreamRecord(r);
}

size_t StepsOf(const uint8_t* record) {
  AttentionStreamRecord r;
  std::memcpy(&r, record, sizeof(r));
  return static_cast<size_t>(ClampStreamRecord(r).steps);
}

// Runs units [0, n) round by round: `unit(i, record, kv, stride, steps)`
// for each unit i, with kv its lane's first key tile and `steps` its
// round's (the first unit's), after clearing its output tile.
template <typename UnitFn>
void ForEachUnit(const uint8_t* const* in, uint8_t* out, size_t n,
                 UnitFn unit) {
  constexpr size_t kLanes = kStreamLanes;
  const uint8_t* kv = in[1];
  for (size_t first = 0; first < n; first += kLanes) {
    const int32_t steps = RecordOf(in[0] + first * kStreamQrecBytes).steps;
    for (size_t i = first; i < std::min(n, first + kLanes); ++i) {
      std::memset(out + i * kStreamMatrixBytes, 0, kStreamMatrixBytes);
      unit(i, kv + (i - first) * kStreamStepBytes, steps);
    }
    kv += static_cast<size_t>(steps) * kLanes * kStreamStepBytes;
  }
}

// The AIE entry, step by step, as a core runs it: every lane loops over
// its round's steps.
void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  static_assert(alignof(int32_t) <= alignof(std::max_align_t));
  auto* state = new int32_t[kStreamStateWords];
  ForEachUnit(in, out, n, [&](size_t i, const uint8_t* kv, int32_t steps) {
    // 4-byte aligned: every buffer the backends pass is, and 4136 is a
    // multiple of 4.
    const auto* qrec =
        reinterpret_cast<const int32_t*>(in[0] + i * kStreamQrecBytes);
    for (int32_t t = 0; t < steps; ++t) {
      attention_stream_step(
          qrec,
          reinterpret_cast<const int8_t*>(
              kv + static_cast<size_t>(t) * kStreamLanes * kStreamStepBytes),
          state, reinterpret_cast<int8_t*>(out + i * kStreamMatrixBytes), t);
    }
  });
  delete[] state;
}

// The same units by the best path the CPU has (cpu::AttentionStreamUnit):
// a unit whose own steps are not reached in its round's loop (a record
// out of contract) keeps the zeros the reference leaves, and one that is
// takes min(tiles, steps) key tiles, as the entry does.
void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  ForEachUnit(in, out, n, [&](size_t i, const uint8_t* kv, int32_t steps) {
    const uint8_t* qrec = in[0] + i * kStreamQrecBytes;
    const AttentionStreamRecord r = RecordOf(qrec);
    if (r.steps == 0 || r.steps > steps) return;
    cpu::AttentionStreamUnit(StreamUnitArgs{
        .q = reinterpret_cast<const int8_t*>(qrec),
        .kv = reinterpret_cast<const int8_t*>(kv),
        .kv_stride = kStreamLanes * kStreamStepBytes,
        .out = reinterpret_cast<int8_t*>(out + i * kStreamMatrixBytes),
        .rows = r.rows,
        .keys = r.keys,
        .diag = r.diag,
        .tiles = r.tiles,
        .score_scale = {r.score_multiplier, r.score_shift},
        .output_scale = {r.output_multiplier, r.output_shift}});
  });
}

// One whole tile without a mask, output scale 1:
// {mult, shift, 2^30, 1, 64, 64, 64, 1, 1, 0}.
absl::Status EncodeParams(std::span<const ParamValue> values,
                          std::span<uint8_t> record) {
  const double s = std::get<double>(values[0]);
  if (absl::Status status = CheckScoreScale(s); !status.ok()) return status;
  const ScoreScale scale = QuantizeScoreScale(s);
  const online::OutputScale unit = online::QuantizeOutputScale(1.0);
  const AttentionStreamRecord r{.score_multiplier = scale.multiplier,
                                .score_shift = scale.shift,
                                .output_multiplier = unit.multiplier,
                                .output_shift = unit.shift,
                                .rows = kStreamTile,
                                .keys = kStreamTile,
                                .diag = kStreamTile,
                                .tiles = 1,
                                .steps = 1,
                                .reserved = 0};
  std::memcpy(record.data(), &r, sizeof(r));
  return absl::OkStatus();
}

}  // namespace

const KernelSpec& Spec() {
  constexpr int64_t kT = kStreamTile;
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "attention_stream",
      .summary =
          "One query tile of sequence attention against its head's key "
          "tiles streamed past it: INT8 q [N, 64, 64], a per-unit record and "
          "stepped k|v tiles -> the unit's INT8 output [N, 64, 64]",
      .unit = "query tile",
      .units = "query tiles",
      .inputs = {{"q", DType::kInt8, {kT, kT}},
                 {"kv", DType::kInt8, {2, kT, kT}, 0, /*stepped=*/true}},
      .output = {"out", DType::kInt8, {kT, kT}},
      .params = {{"score_scale", ParamType::kDouble, 0.125,
                  "scale of q.k before the softmax, in [2^-16, 4]; encodes one "
                  "whole unmasked tile (the attention model writes its own "
                  "records)"}},
      .param_bytes = kStreamRecordBytes,
      .encode_params = EncodeParams,
      // q and its record on the core's first stream; the key tiles on the
      // second.
      .device_args = {{0, 2}, {1}},
      .reference = Reference,
      .cpu = Cpu,
      .cpu_quantum = kStreamLanes,
      // Buffers hold the most steps a run can take (64 per unit, 8 MB for
      // 16 units): 4 rounds, each up to 64 x 4 key tiles.
      .default_max_batch = 16,
      .internal = true,
      .steps_of = StepsOf,
      .max_steps = kStreamMaxSteps,
      .design = {.generator = "attention_stream_design.py",
                 .source = "attention_stream_kernel.cc",
                 .entry = "attention_stream_step",
                 .streams = {{"of_out", 2, false, 0, 0},
                             {"of_q", 0, true, 0, 1},
                             {"of_kv", 1, true, 1, 2}}},
      // kernels/tools/make_golden.cc, AttentionStreamRecipe.
      .golden = {.items = 4,
                 .inputs = {{"in0.bin",
                             "2dcb913672bd5928e7f22d31c101ae06"
                             "8c9966e20f13180565cb4e0960289c31",
                             NPUK_EMBEDDED(attention_stream, in0)},
                            {"in1.bin",
                             "df9de6e3dc3ebbba5d0a6dc9c27fe93a"
                             "79ec7ed6e0c222d4ecf70ea3e2e5257a",
                             NPUK_EMBEDDED(attention_stream, in1)}},
                 .output = {"out.bin",
                            "46d270a5bda3452a7b0b3bde0879d09b"
                            "b0bffc30046d5ca63a8616b98f902c97",
                            NPUK_EMBEDDED(attention_stream, out)}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::attention_stream
