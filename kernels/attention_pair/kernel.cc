// The attention_pair kernel's declaration (kernels/registry/kernel_spec.h):
// one (query tile, key tile) pair of the whole-sequence attention, q, k, v
// INT8 [64, 64] each, in; the rows' online-softmax partials, INT32 [64, 66]
// = {m_t, S_t, o_t[0..63]} per row, out. Each pair carries its own 24 B
// record {score_multiplier, score_shift, rows, keys, diag, 0} (device
// argument 1), which the attention model writes (server/models/); the
// score_scale parameter's encoding is a whole unmasked tile. Internal: it
// is served through the attention model, never on the wire.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/attention/attention_seq.h"
#include "kernels/attention/attention_seq_request.h"
#include "kernels/attention_pair/attention_pair_kernel.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(attention_pair, in0);
NPUK_DECLARE_EMBEDDED(attention_pair, in1);
NPUK_DECLARE_EMBEDDED(attention_pair, out);

namespace npuk::kernels::attention_pair {
namespace {

// Record i of a parameter plane, read without assuming alignment.
AttentionPairRecord RecordOf(const uint8_t* records, size_t i) {
  AttentionPairRecord r;
  std::memcpy(&r, records + i * kAttentionPairRecordBytes, sizeof(r));
  return r;
}

// The backends' output buffers need not be 4-byte aligned: every pair is
// written to `partials` and copied out.
void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  std::vector<int32_t> partials(kAttentionPairOutWords);
  for (size_t i = 0; i < n; ++i) {
    const AttentionPairRecord r = RecordOf(in[1], i);
    attention_pair_64x64(
        reinterpret_cast<const int8_t*>(in[0] + i * kAttentionPairInBytes),
        partials.data(), r.score_multiplier, r.score_shift, r.rows, r.keys,
        r.diag);
    std::memcpy(out + i * kAttentionPairOutBytes, partials.data(),
                kAttentionPairOutBytes);
  }
}

// The best path the CPU has (cpu::AttentionSeqPath()), straight into `out`
// when it is 4-byte aligned (the executors' buffers are), else through one
// pair's copy.
void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  const bool aligned = reinterpret_cast<uintptr_t>(out) % alignof(int32_t) == 0;
  std::vector<int32_t> partials(aligned ? 0 : kAttentionPairOutWords);
  int32_t limit[kAttentionPairTile];
  for (size_t i = 0; i < n; ++i) {
    const AttentionPairRecord r = RecordOf(in[1], i);
    for (int32_t row = 0; row < kAttentionPairTile; ++row) {
      limit[row] = AttentionPairLimit(row, r.rows, r.keys, r.diag);
    }
    uint8_t* dest = out + i * kAttentionPairOutBytes;
    int32_t* words =
        aligned ? reinterpret_cast<int32_t*>(dest) : partials.data();
    cpu::AttentionPair(
        reinterpret_cast<const int8_t*>(in[0] + i * kAttentionPairInBytes),
        limit, ScoreScale{r.score_multiplier, r.score_shift}, words);
    if (!aligned) std::memcpy(dest, partials.data(), kAttentionPairOutBytes);
  }
}

// A whole tile without a mask: {mult, shift, 64, 64, 64, 0}.
absl::Status EncodeParams(std::span<const ParamValue> values,
                          std::span<uint8_t> record) {
  const double s = std::get<double>(values[0]);
  if (absl::Status status = CheckScoreScale(s); !status.ok()) return status;
  const ScoreScale scale = QuantizeScoreScale(s);
  const AttentionPairRecord r{.score_multiplier = scale.multiplier,
                              .score_shift = scale.shift,
                              .rows = kAttentionPairTile,
                              .keys = kAttentionPairTile,
                              .diag = kAttentionPairTile,
                              .reserved = 0};
  std::memcpy(record.data(), &r, sizeof(r));
  return absl::OkStatus();
}

}  // namespace

const KernelSpec& Spec() {
  constexpr int64_t kT = kAttentionPairTile;
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "attention_pair",
      .summary =
          "One (query tile, key tile) pair of sequence attention: INT8 q, k, "
          "v [N, 64, 64] and a per-pair mask record -> INT32 partials "
          "[N, 64, 66] (m_t, S_t, o_t per row) for the host's online softmax",
      .unit = "tile pair",
      .units = "tile pairs",
      .inputs = {{"q", DType::kInt8, {kT, kT}},
                 {"k", DType::kInt8, {kT, kT}},
                 {"v", DType::kInt8, {kT, kT}}},
      .output = {"partials",
                 DType::kInt32,
                 {kT, static_cast<int64_t>(kAttentionPairRowWords)}},
      .params =
          {{"score_scale", ParamType::kDouble, 0.125,
            "scale of q.k before the softmax, in [2^-16, 4]; encodes a whole "
            "unmasked tile (the attention model writes its own records)"}},
      .param_bytes = kAttentionPairRecordBytes,
      .encode_params = EncodeParams,
      // q|k|v per pair on the core's input stream; the records on a second.
      .device_args = {{0, 1, 2}, {3}},
      .reference = Reference,
      .cpu = Cpu,
      .cpu_quantum = 1,
      .default_max_batch = 256,
      .internal = true,
      .design = {.generator = "attention_pair_design.py",
                 .source = "attention_pair_kernel.cc",
                 .entry = "attention_pair_64x64",
                 .streams = {{"of_out", 2, false, 0, 0},
                             {"of_qkv", 0, true, 0, 1},
                             {"of_params", 1, true, 1, 2}}},
      // kernels/tools/make_golden.cc, AttentionPairRecipe: each pair its own
      // record, so golden.params stays empty (no wire request replays it).
      .golden = {.items = 4,
                 .inputs = {{"in0.bin",
                             "1643a914e82f44916a4e92571c52bdb0"
                             "5258258fa42f1f02c8bf2388367d2b60",
                             NPUK_EMBEDDED(attention_pair, in0)},
                            {"in1.bin",
                             "a9c207b377ce686af53a9f222e514f11"
                             "563dd19e38e75ccd76eac4574ae19686",
                             NPUK_EMBEDDED(attention_pair, in1)}},
                 .output = {"out.bin",
                            "f65663e1b8e8c4bd8ae101bb2aa66bc5"
                            "9264205acda72e6d9f7892a8efbaefe3",
                            NPUK_EMBEDDED(attention_pair, out)}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::attention_pair
