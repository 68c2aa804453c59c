#!/usr/bin/python3
"""mel_pcm on npu1_1col: shim -> core (0,2) PCM windows, core -> shim log-mel.

The mel design with the windows cut out of raw PCM by the shim DMA:
item i is the 400-sample window starting at sample 160 i, so the input
BD reads 200-word windows at an 80-word stride (sizes [1, 1, N, 200],
strides [0, 0, 80, 1] in i32 words) from a buffer of 160 N + 240
samples, and the core receives each window whole (800 B) and calls
mel_pcm_kernel_simple on it: 80 int16 Q8 log10 mel energies (160 B) out
per item. mel128_pcm_design.py is this design with 128 bands (pcm_design).
Usage: mel_pcm_design.py --n 16 [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402


def pcm_design(kernel, bands):
    """(DESIGN, CORE) of the windowed mel kernel `kernel` with `bands` bands."""
    func = kernel + "_kernel_simple"
    design = aie_design.Design(
        kernel=kernel,
        func=func,
        obj=kernel + "_kernel.o",
        fifos=(
            aie_design.Fifo("of_out", "i16", bands, 2 * bands, False, 1, 0),
            # 400 samples per item on the tile, 160 (320 B) apart in DDR.
            aie_design.Fifo("of_in", "i16", 400, 800, True, 0, 1,
                            stride_bytes=320),
        ),
        kernel_args=("memref<400xi16>", "memref<%dxi16>" % bands),
        # The mel kernel's call tree (<kernel>_kernel_simple ->
        # npuk::mel::LogMelQ8Frame<bands> -> npuk::mel::Spectrum), as
        # measured for mel by kernels/tools/stack_sizes.py on the host proxy
        # (6500 B); x1.5 + 512 B for runtime helpers, rounded up, is checked
        # by ctest npuk_design_stacks (and on the Peano object by the AIE
        # build).
        stack_size=11264,
    )
    core = """
func.call @%s(%%of_in, %%of_out) : (memref<400xi16>, memref<%dxi16>) -> ()
""" % (func, bands)
    return design, core


DESIGN, CORE = pcm_design("mel_pcm", 80)

if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
