// The vectorised AIE2 mel kernel, written once against the vector
// vocabulary (kernels/vec/vec.h): Peano compiles its aie face for the
// cores; the host face is what CI runs, byte-identical to the scalar entry
// (mel_kernel_simple) and to the CPU backend, and counts the operations
// each call issues for the cycle model (kernels/vec/cycle_model.h).
//
// The core takes frames in groups of kMelVecLanes, one frame per vector
// lane, sample-major ([400][lanes] int16: the mem tile's DMA transposes the
// [frames][400] stream on the way in, at no core cost) and writes
// [bands][lanes] int8 (transposed back by the output DMA). The arithmetic is
// kernels/mel/README.md's fixed-point pipeline with every product on 16-bit
// operands.
#ifndef NPUK_KERNELS_MEL_MEL_KERNEL_VEC_H_
#define NPUK_KERNELS_MEL_MEL_KERNEL_VEC_H_

#include <cstddef>
#include <cstdint>

namespace npuk {
inline constexpr int kMelVecLanes = 16;  // frames per core call
}  // namespace npuk

// in_t: 400 x 16 int16, sample n of lane f at in_t[16 n + f]; out_t:
// 80 x 16 int8, band m of lane f at out_t[16 m + f], the bytes
// mel_kernel_simple gives for each frame.
extern "C" void mel_vec_group(const int16_t* in_t, int8_t* out_t);
// mel_pcm's vector kernel: the same stages and input layout (the shim DMA
// cuts the 400-sample windows out of the PCM at the 160-sample hop), the
// Q8 log stage: out_t 80 x 16 int16, the values mel_pcm_kernel_simple
// gives for each window.
extern "C" void mel_pcm_vec_group(const int16_t* in_t, int16_t* out_t);
// The 128-band kernels' (mel128, mel128_pcm): out_t 128 x 16. Their Slaney
// weights reach 43,706 in Q20; the 17 above 32767 are two int16 digits.
extern "C" void mel128_vec_group(const int16_t* in_t, int8_t* out_t);
extern "C" void mel128_pcm_vec_group(const int16_t* in_t, int16_t* out_t);

#if !(defined(__AIENGINE__) || defined(__chess__))
namespace npuk::vec {
struct Profile;
}  // namespace npuk::vec

namespace npuk::cpu {
// Host driver: n frames [n][400] in, [n][Bands] out, through the vector
// kernel in groups of 16 (a partial group is padded with silence, as the
// core would compute it). With `profile`, the operations of every group
// call are added to it, by region.
void MelFramesVec(const int16_t* in, int8_t* out, size_t n,
                  vec::Profile* profile = nullptr);
// The same for mel_pcm_vec_group: n windows [n][400] in, [n][80] int16 out.
void MelPcmFramesVec(const int16_t* in, int16_t* out, size_t n,
                     vec::Profile* profile = nullptr);
// mel128_vec_group / mel128_pcm_vec_group: [n][128] out.
void Mel128FramesVec(const int16_t* in, int8_t* out, size_t n,
                     vec::Profile* profile = nullptr);
void Mel128PcmFramesVec(const int16_t* in, int16_t* out, size_t n,
                        vec::Profile* profile = nullptr);
}  // namespace npuk::cpu
#endif

#endif  // NPUK_KERNELS_MEL_MEL_KERNEL_VEC_H_
