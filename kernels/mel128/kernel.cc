// The mel128 kernel's declaration (kernels/registry/kernel_spec.h): one
// 25 ms frame of 16 kHz audio in, the 128 log-mel values of Whisper
// large-v3 / large-v3-turbo out. The mel kernel's math with the 128-band
// Slaney filterbank (kernels/mel128/README.md).
#include "kernels/mel128/mel128_cpu.h"
#include "kernels/mel128/mel128_kernel.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(mel128, in0);
NPUK_DECLARE_EMBEDDED(mel128, out);

namespace npuk::kernels::mel128 {
namespace {

// Device layouts are little-endian int16 in, int8 out; the buffers the
// backends hand in are at least 2-byte aligned.
void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  cpu::Mel128FramesPortable(reinterpret_cast<const int16_t*>(in[0]),
                            reinterpret_cast<int8_t*>(out), n);
}

void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  cpu::Mel128Frames(reinterpret_cast<const int16_t*>(in[0]),
                    reinterpret_cast<int8_t*>(out), n);
}

}  // namespace

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "mel128",
      .summary =
          "Whisper large-v3 log-mel features of 25 ms frames: INT16 audio "
          "[N, 400] (16 kHz, full scale 1.0) -> INT8 log_mel [N, 128], "
          "log10 P ~ q/16 - 4",
      .unit = "frame",
      .units = "frames",
      .inputs = {{"audio", DType::kInt16, {kMelFrameSamples}}},
      .output = {"log_mel", DType::kInt8, {kMel128Bands}},
      .device_args = {{0}},
      .reference = Reference,
      .cpu = Cpu,
      // The AVX2 path (the mel kernel's) takes frames four at a time;
      // thread chunks stay multiples of eight as for mel.
      .cpu_quantum = 8,
      // A whole 30 s Whisper window (3000 frames) in one request.
      .default_max_batch = 3072,
      // Framed 128-band mel; on the NPU the log_mel model (mel128_pcm)
      // serves 128 bands, and this kernel is listed in the config to get
      // one of Phoenix's 6 hardware contexts.
      .npu_opt_in = true,
      .design = {.generator = "mel128_design.py",
                 .source = "mel128_kernel.cc",
                 .entry = "mel128_kernel_simple",
                 .streams = {{"of_out", 1, false, 0, 0},
                             {"of_in", 0, true, 0, 1}}},
      // The mel kernel's 8 golden frames (the same in0.bin) through the
      // 128-band filterbank.
      .golden = {.items = 8,
                 .inputs = {{"in0.bin",
                             "d9f364e3517ee22d25f387fd05e6943c5742d853bcf098383"
                             "84f0033b421b9d2",
                             NPUK_EMBEDDED(mel128, in0)}},
                 .output = {"out.bin",
                            "42bc0f7175234be8d281675ee848ba1e6853ba662d6b5b07c0"
                            "26bb5ae64523e9",
                            NPUK_EMBEDDED(mel128, out)}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::mel128
