// Replays the committed golden vectors through the kernel entries and exits
// non-zero on the first differing byte. No test framework, so ctest can
// build it with a second compiler (clang, like Peano) and show that the
// compile-time tables and the integer math give the same bytes there.
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernels/attention/attention_kernel.h"
#include "kernels/golden/golden.h"
#include "kernels/mel/mel_kernel.h"

int main() {
  const npuk::golden::Golden& mel = npuk::golden::Mel();
  for (size_t i = 0; i < mel.items; ++i) {
    int16_t frame[npuk::kMelFrameSamples];
    std::memcpy(frame, mel.input.data() + i * npuk::kMelFrameInBytes,
                npuk::kMelFrameInBytes);
    int8_t out[npuk::kMelBands];
    mel_kernel_simple(frame, out);
    if (std::memcmp(out, mel.output.data() + i * npuk::kMelFrameOutBytes,
                    npuk::kMelFrameOutBytes) != 0) {
      std::fprintf(stderr, "mel golden frame %zu differs on this compiler\n",
                   i);
      return 1;
    }
  }
  const npuk::golden::Golden& att = npuk::golden::Attention();
  std::vector<int8_t> out(npuk::kAttentionOutBytes);
  for (size_t i = 0; i < att.items; ++i) {
    attention_64x64(reinterpret_cast<const int8_t*>(
                        att.input.data() + i * npuk::kAttentionInBytes),
                    out.data(), att.scale.multiplier, att.scale.shift);
    if (std::memcmp(out.data(),
                    att.output.data() + i * npuk::kAttentionOutBytes,
                    npuk::kAttentionOutBytes) != 0) {
      std::fprintf(stderr,
                   "attention golden tile %zu differs on this compiler\n", i);
      return 1;
    }
  }
  std::printf("golden: %zu mel frames and %zu attention tiles reproduced\n",
              mel.items, att.items);
  return 0;
}
