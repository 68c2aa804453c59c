// The vectorised AIE2 attention tile kernel, written once against the
// vector vocabulary (kernels/vec/vec.h): QK^T as aie::mmul<4, 8, 8> int8
// blocks, PV as aie::mmul<4, 4, 8> int16 x int8 blocks, the fixed-point
// softmax of kernels/common/softmax.h in 16-lane int32 vectors with every
// product on 16-bit digits. The host face is byte-identical to
// attention_64x64 and counts its operations for the cycle model.
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_VEC_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_VEC_H_

#include <cstdint>

// The core routine on the layouts the mem tile's DMA produces (row-major
// operands cut into the mmul blocks, at no core cost):
//   q_blk  [16 row blocks][8 d blocks][4 x 8]    int8  (A of q k^T)
//   k_blk  [8 j blocks][8 d blocks][8 x 8]       int8  (k row-blocked; the
//          core transposes each block into B = k^T: the DMA moves 32-bit
//          words and cannot transpose int8)
//   v_blk  [16 j blocks][8 c blocks][4 x 8]      int8  (B of P v)
//   out_blk[16 row blocks][8 c blocks][4 x 8]    int8
extern "C" void attention_vec_blocks(const int8_t* q_blk, const int8_t* k_blk,
                                     const int8_t* v_blk, int8_t* out_blk,
                                     int32_t score_multiplier,
                                     int32_t score_shift);

namespace npuk::attention_vec {

// Where element (row, col) of a row-major 64 x 64 operand goes in the
// layouts above: 4 x 8 blocks (q_blk, v_blk, out_blk) and 8 x 8 blocks
// (k_blk).
constexpr int Block4x8(int row, int col) {
  return ((row / 4) * 8 + col / 8) * 32 + (row % 4) * 8 + col % 8;
}
constexpr int Block8x8(int row, int col) {
  return ((row / 8) * 8 + col / 8) * 64 + (row % 8) * 8 + col % 8;
}

}  // namespace npuk::attention_vec

// attention_64x64's signature (q|k|v row-major in, row-major out): the
// blocking done on the host, then attention_vec_blocks.
extern "C" void attention_64x64_vec(const int8_t* qkv, int8_t* out,
                                    int32_t score_multiplier,
                                    int32_t score_shift);

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_KERNEL_VEC_H_
