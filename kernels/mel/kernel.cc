// The mel kernel's declaration (kernels/registry/kernel_spec.h): one 25 ms
// frame of 16 kHz audio in, Whisper's 80 log-mel values out.
#include "kernels/mel/mel_cpu.h"
#include "kernels/mel/mel_kernel.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(mel, in0);
NPUK_DECLARE_EMBEDDED(mel, out);

namespace npuk::kernels::mel {
namespace {

// Device layouts are little-endian int16 in, int8 out; the buffers the
// backends hand in are at least 2-byte aligned.
void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  cpu::MelFramesPortable(reinterpret_cast<const int16_t*>(in[0]),
                         reinterpret_cast<int8_t*>(out), n);
}

void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  cpu::MelFrames(reinterpret_cast<const int16_t*>(in[0]),
                 reinterpret_cast<int8_t*>(out), n);
}

}  // namespace

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec = new KernelSpec{
      .name = "mel",
      .summary =
          "Whisper log-mel features of 25 ms frames: INT16 audio [N, 400] "
          "(16 kHz, full scale 1.0) -> INT8 log_mel [N, 80], log10 P ~ "
          "q/16 - 4",
      .unit = "frame",
      .units = "frames",
      .inputs = {{"audio", DType::kInt16, {kMelFrameSamples}}},
      .output = {"log_mel", DType::kInt8, {kMelBands}},
      .device_args = {{0}},
      .reference = Reference,
      .cpu = Cpu,
      // The AVX2 path takes frames in groups of four; thread chunks of
      // eight keep a split from leaving partial groups behind.
      .cpu_quantum = 8,
      // A whole 30 s Whisper window (3000 frames) in one request.
      .default_max_batch = 3072,
      .design = {.generator = "mel_design.py",
                 .source = "mel_kernel.cc",
                 .entry = "mel_kernel_simple",
                 .streams = {{"of_out", 1, false, 0, 0},
                             {"of_in", 0, true, 0, 1}}},
      .golden = {.items = 8,
                 .inputs = {{"in0.bin",
                             "d9f364e3517ee22d25f387fd05e6943c5742d853bcf098383"
                             "84f0033b421b9d2",
                             NPUK_EMBEDDED(mel, in0)}},
                 .output = {"out.bin",
                            "e8f57f3f6cefb375414e80050180b7355993a4eec8a1386cbe"
                            "057a3011e94ad0",
                            NPUK_EMBEDDED(mel, out)}},
  };
  return *kSpec;
}

}  // namespace npuk::kernels::mel
