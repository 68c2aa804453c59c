// The passthrough kernel's declaration (kernels/registry/kernel_spec.h):
// 4096 bytes in, the same bytes out. The first thing to run on new
// hardware: it checks the DMA path, buffers and syncs without any compute.
#include <cstring>

#include "kernels/passthrough/passthrough_kernel.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(passthrough, in0);
NPUK_DECLARE_EMBEDDED(passthrough, out);

namespace npuk::kernels::passthrough {
namespace {

void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    passthrough_4096(
        reinterpret_cast<const int8_t*>(in[0] + i * kPassthroughBlockBytes),
        reinterpret_cast<int8_t*>(out + i * kPassthroughBlockBytes));
  }
}

void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  std::memcpy(out, in[0], n * kPassthroughBlockBytes);
}

}  // namespace

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "passthrough",
      .summary =
          "DMA bring-up check: INT8 in [N, 4096] -> INT8 out [N, 4096], the "
          "same bytes, no compute",
      .unit = "block",
      .units = "blocks",
      .inputs = {{"in", DType::kInt8, {kPassthroughBlockBytes}}},
      .output = {"out", DType::kInt8, {kPassthroughBlockBytes}},
      .device_args = {{0}},
      .reference = Reference,
      .cpu = Cpu,
      .cpu_quantum = 1,
      .default_max_batch = 256,
      .design = {.generator = "passthrough_design.py",
                 .source = "passthrough_kernel.cc",
                 .entry = "passthrough_4096",
                 .streams = {{"of_out", 1, false, 0, 0},
                             {"of_in", 0, true, 0, 1}}},
      .golden = {.items = 4,
                 .inputs = {{"in0.bin",
                             "9df80d4d082bc8d334fc735ed95aa31cd73a18bd78826cc2b"
                             "358a6c06ff3296e",
                             NPUK_EMBEDDED(passthrough, in0)}},
                 .output = {"out.bin",
                            "9df80d4d082bc8d334fc735ed95aa31cd73a18bd78826cc2b3"
                            "58a6c06ff3296e",
                            NPUK_EMBEDDED(passthrough, out)}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::passthrough
