// The attention kernel's declaration (kernels/registry/kernel_spec.h): one
// 64x64 int8 tile of q, k, v in, softmax(q k^T * score_scale) v out. The
// score scale travels as a per-tile parameter record {int32 multiplier,
// int32 shift} (QuantizeScoreScale), device argument 1.
#include <cstring>

#include "kernels/attention/attention_cpu.h"
#include "kernels/attention/attention_kernel.h"
#include "kernels/attention/attention_seq_request.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(attention, in0);
NPUK_DECLARE_EMBEDDED(attention, in1);
NPUK_DECLARE_EMBEDDED(attention, out);

namespace npuk::kernels::attention {
namespace {

constexpr size_t kRecordBytes = sizeof(ScoreScale);  // 8, little-endian
static_assert(kRecordBytes == 8);

// The parameter records of n tiles, read without assuming alignment.
std::vector<ScoreScale> Scales(const uint8_t* params, size_t n) {
  std::vector<ScoreScale> scales(n);
  std::memcpy(scales.data(), params, n * kRecordBytes);
  return scales;
}

void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  const std::vector<ScoreScale> scales = Scales(in[1], n);
  cpu::AttentionTilesPortable(reinterpret_cast<const int8_t*>(in[0]),
                              reinterpret_cast<int8_t*>(out), n, scales.data());
}

void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  const std::vector<ScoreScale> scales = Scales(in[1], n);
  cpu::AttentionTiles(reinterpret_cast<const int8_t*>(in[0]),
                      reinterpret_cast<int8_t*>(out), n, scales.data());
}

absl::Status EncodeParams(std::span<const ParamValue> values,
                          std::span<uint8_t> record) {
  const double s = std::get<double>(values[0]);
  if (absl::Status status = CheckScoreScale(s); !status.ok()) return status;
  const ScoreScale scale = QuantizeScoreScale(s);
  std::memcpy(record.data(), &scale, kRecordBytes);
  return absl::OkStatus();
}

}  // namespace

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "attention",
      .summary =
          "One 64x64 attention tile: INT8 q, k, v [N, 64, 64] -> INT8 out "
          "[N, 64, 64] = sat8(round(softmax(q k^T * score_scale) v))",
      .unit = "tile",
      .units = "tiles",
      .inputs = {{"q", DType::kInt8, {kAttentionTokens, kAttentionDims}},
                 {"k", DType::kInt8, {kAttentionTokens, kAttentionDims}},
                 {"v", DType::kInt8, {kAttentionTokens, kAttentionDims}}},
      .output = {"out", DType::kInt8, {kAttentionTokens, kAttentionDims}},
      .params =
          {{"score_scale", ParamType::kDouble, 0.125,
            "scale of q.k before the softmax, in [2^-16, 4]; for float Q, K "
            "quantised with scales s_q, s_k send s_q*s_k/8"}},
      .param_bytes = kRecordBytes,
      .encode_params = EncodeParams,
      // q|k|v per tile on the core's input stream; the records on a second.
      .device_args = {{0, 1, 2}, {3}},
      .reference = Reference,
      .cpu = Cpu,
      .cpu_quantum = 1,
      .default_max_batch = 256,
      .design = {.generator = "attention_design.py",
                 .source = "attention_kernel.cc",
                 .entry = "attention_64x64",
                 .streams = {{"of_out", 2, false, 0, 0},
                             {"of_qkv", 0, true, 0, 1},
                             {"of_params", 1, true, 1, 2}}},
      .golden = {.items = 4,
                 .inputs = {{"in0.bin",
                             "df39ed240cc5e44e43daf690afc6fe28e04c4efb13ad8e661"
                             "ed012e95e953e62",
                             NPUK_EMBEDDED(attention, in0)},
                            {"in1.bin",
                             "94f81802eab5b09ad0740036741b45457813a8906d1b0002f"
                             "b482f5ab9c2e514",
                             NPUK_EMBEDDED(attention, in1)}},
                 .output = {"out.bin",
                            "51548c07959415de3e84280a9d844eeca551d67a426b28d835"
                            "957b57cfab8318",
                            NPUK_EMBEDDED(attention, out)},
                 // The score scale in1.bin encodes (multiplier 2119611008,
                 // shift -10), exact in a double: what a client sends.
                 .params = {0x1.f95acap-11}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::attention
