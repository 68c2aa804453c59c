// The mel_pcm kernel's declaration (kernels/registry/kernel_spec.h): the
// windowed mel kernel over raw PCM with 80 bands. Everything but the names
// and the golden files is shared with the other band count
// (kernels/mel_pcm/mel_pcm_spec.h).
#include "kernels/mel_pcm/mel_pcm_kernel.h"
#include "kernels/mel_pcm/mel_pcm_spec.h"
#include "kernels/registry/embedded.h"
#include "kernels/registry/kernel_spec.h"

NPUK_DECLARE_EMBEDDED(mel_pcm, in0);
NPUK_DECLARE_EMBEDDED(mel_pcm, out);

namespace npuk::kernels::mel_pcm {

const KernelSpec& Spec() {
  static const KernelSpec* const kSpec =
      new KernelSpec(mel_pcm_spec::MelPcmSpec<80, mel_pcm_kernel_simple>({
          .name = "mel_pcm",
          .summary = "Whisper log10 mel energies (Q8) of 400-sample windows at "
                     "a 160-sample hop",
          .prefix = "mel_pcm",
          .in0_sha256 = "0c99c54f731fb65f1b108180a6a062a1"
                        "6c0ab2bdddc6329f1e081219bec83d52",
          .in0 = NPUK_EMBEDDED(mel_pcm, in0),
          .out_sha256 = "3df87c399ef9af468e6319db112d7129"
                        "479fbc7347b4d5836c27fd6e21bf41ad",
          .out = NPUK_EMBEDDED(mel_pcm, out),
      }));
  return *kSpec;
}

}  // namespace npuk::kernels::mel_pcm
