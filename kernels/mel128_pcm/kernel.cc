// The mel128_pcm kernel's declaration (kernels/registry/kernel_spec.h): the
// windowed mel kernel over raw PCM with 128 bands. Everything but the names
// and the golden files is shared with the other band count
// (kernels/mel_pcm/mel_pcm_spec.h).
#include "kernels/mel128_pcm/mel128_pcm_kernel.h"
#include "kernels/mel_pcm/mel_pcm_spec.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(mel128_pcm, in0);
NPUK_DECLARE_EMBEDDED(mel128_pcm, out);

namespace npuk::kernels::mel128_pcm {

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec =
      new KernelSpec(mel_pcm_spec::MelPcmSpec<128, mel128_pcm_kernel_simple>({
          .name = "mel128_pcm",
          .summary = "Whisper large-v3 log10 mel energies (128 bands, Q8) of "
                     "400-sample windows at a 160-sample hop",
          .prefix = "mel128_pcm",
          .in0_sha256 = "0c99c54f731fb65f1b108180a6a062a1"
                        "6c0ab2bdddc6329f1e081219bec83d52",
          .in0 = NPUK_EMBEDDED(mel128_pcm, in0),
          .out_sha256 = "4c792a840c5182bc26e543d1003d1b33"
                        "ad54d70fbb4785dce4760ab323d9af36",
          .out = NPUK_EMBEDDED(mel128_pcm, out),
      }));
  return *kSpec;
}

}  // namespace npuk::kernels::mel128_pcm
