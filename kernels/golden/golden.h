// Golden vectors of both kernels: committed inputs and the outputs the
// reference kernels give for them (kernels/golden/golden_data.cc, written by
// kernels/tools/make_golden). The health canaries replay them through the
// serving path and compare byte for byte; the NPU bring-up compares the
// device against them. tests/kernels/golden_test.cc checks that the
// reference still reproduces every committed byte.
#ifndef NPUK_KERNELS_GOLDEN_GOLDEN_H_
#define NPUK_KERNELS_GOLDEN_GOLDEN_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernels/common/score_scale.h"

namespace npuk::golden {

struct Golden {
  std::span<const uint8_t> input;   // items * device in_bytes
  std::span<const uint8_t> output;  // items * device out_bytes
  size_t items;
  // Attention: the scale of every tile. Mel: {0, 0}, unused.
  ScoreScale scale;
};

// 8 frames: a voiced speech-like frame, a fricative-like frame, tones, a
// chirp, a clipped square wave, white noise and a quiet frame. No output
// frame is all zero.
const Golden& Mel();

// 4 tiles of Gaussian q, k, v (sigma 1 to 3) quantised per tensor, score
// scale 0.0125 (s_q s_k / 8 of realistic data). No output tile is all zero.
const Golden& Attention();

}  // namespace npuk::golden

#endif  // NPUK_KERNELS_GOLDEN_GOLDEN_H_
