// The declaration shared by the windowed mel kernels, mel_pcm (80 bands)
// and mel128_pcm (128): they differ only in the band count, as mel and
// mel128 differ only in the filterbank table (kernels/common/mel_tables.h).
// Each folder's kernel.cc names its kernel, entry and golden files and
// calls MelPcmSpec<Bands, Entry>(); everything else is here.
//
// Input: int16 PCM at a 160-sample item stride with a 240-sample read-ahead
// (halo), item i being the window of samples [160 i, 160 i + 400); on the
// NPU the shim DMA reads those windows straight from the PCM buffer.
// Output: Bands int16 values per window, l = round(256 log10 P) floored at
// -2560 (mel::LogMelQ8, kernels/common/mel_math.h). Internal: served through
// the log_mel model (server/models/log_mel.h), not on the wire.
#ifndef NPUK_KERNELS_MEL_PCM_MEL_PCM_SPEC_H_
#define NPUK_KERNELS_MEL_PCM_MEL_PCM_SPEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "kernels/common/cpu_features.h"
#include "kernels/common/pcm_windows.h"
#include "kernels/mel/mel_cpu.h"
#include "kernels/registry/kernel_spec.h"

namespace npuk::kernels::mel_pcm_spec {

// One entry: a 400-sample window in, Bands int16 Q8 log-mel values out.
using Entry = void (*)(const int16_t*, int16_t*);

// What differs between the two folders besides the band count.
struct Names {
  std::string name;     // "mel_pcm"
  std::string summary;  // for ModelMetadata and --help
  std::string prefix;   // file prefix in the folder: "mel_pcm" ->
                        // mel_pcm_design.py, mel_pcm_kernel.cc, the entry
                        // mel_pcm_kernel_simple
  std::string in0_sha256;
  std::span<const uint8_t> in0;
  std::string out_sha256;
  std::span<const uint8_t> out;
};

// Device layouts are little-endian int16 in and out; the buffers the
// backends hand in are at least 2-byte aligned.
template <size_t Bands, Entry E>
void Reference(const uint8_t* const* in, uint8_t* out, size_t n) {
  pcm::WindowsInPlace<Bands, int16_t, E>(
      reinterpret_cast<const int16_t*>(in[0]), reinterpret_cast<int16_t*>(out),
      n);
}

// The framed kernels' SIMD paths (kernels/mel/mel_cpu_avx512.cc,
// mel_cpu_avx2.cc) with the fine log stage, fed windows copied out of the
// PCM; the entry itself without AVX2.
template <size_t Bands, Entry E>
void Cpu(const uint8_t* const* in, uint8_t* out, size_t n) {
  if (cpu::HasAvx2()) {
    pcm::WindowsCopied<Bands, int16_t, cpu::LogMelQ8FramesBest<Bands>>(
        reinterpret_cast<const int16_t*>(in[0]),
        reinterpret_cast<int16_t*>(out), n);
  } else {
    Reference<Bands, E>(in, out, n);
  }
}

template <size_t Bands, Entry E>
KernelSpec MelPcmSpec(Names n) {
  return KernelSpec{
      .name = n.name,
      .summary = n.summary,
      .unit = "frame",
      .units = "frames",
      .inputs = {{"audio",
                  DType::kInt16,
                  {static_cast<int64_t>(pcm::kHop)},
                  pcm::kHalo}},
      .output = {"log_mel", DType::kInt16, {static_cast<int64_t>(Bands)}},
      .device_args = {{0}},
      .reference = Reference<Bands, E>,
      .cpu = Cpu<Bands, E>,
      // The framed AVX2 path takes frames four at a time and the copy
      // sixteen; thread chunks of sixteen keep both whole.
      .cpu_quantum = 16,
      // A whole 30 s Whisper window (3000 frames) in one run.
      .default_max_batch = 3072,
      .internal = true,
      .design = {.generator = n.prefix + "_design.py",
                 .source = n.prefix + "_kernel.cc",
                 .entry = n.prefix + "_kernel_simple",
                 .streams = {{"of_out", 1, false, 0, 0},
                             {"of_in", 0, true, 0, 1}}},
      // The mel recipe's frames as one PCM stream, cut to 18 windows
      // (kernels/tools/make_golden.cc, PcmRecipe).
      .golden = {.items = 18,
                 .inputs = {{"in0.bin", n.in0_sha256, n.in0}},
                 .output = {"out.bin", n.out_sha256, n.out}},
  };
}

}  // namespace npuk::kernels::mel_pcm_spec

#endif  // NPUK_KERNELS_MEL_PCM_MEL_PCM_SPEC_H_
