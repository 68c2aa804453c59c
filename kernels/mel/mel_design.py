#!/usr/bin/python3
"""mel on npu1_1col, a column of 4 cores: shim -> mem tile -> cores (0,2)-(0,5)
audio frames (one per core per round), cores -> mem tile -> shim log-mel.

Per item: 400 int16 samples (800 B) in, 80 int8 bands (80 B) out; the core
calls mel_kernel_simple once per frame. Usage: mel_design.py --n 16 [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402

DESIGN = aie_design.Design(
    kernel="mel",
    func="mel_kernel_simple",
    obj="mel_kernel.o",
    fifos=(
        aie_design.Fifo("of_out", "i8", 80, 80, False, 1, 0),
        aie_design.Fifo("of_in", "i16", 400, 800, True, 0, 1),
    ),
    kernel_args=("memref<400xi16>", "memref<80xi8>"),
    # Measured worst call path (kernels/tools/stack_sizes.py, host proxy):
    # mel_kernel_simple 3240 B -> npuk::mel::Spectrum 3260 B = 6500 B; x1.5
    # + 512 B for runtime helpers, rounded up, is checked by ctest
    # npuk_design_stacks (and on the Peano object by the AIE build). Stack +
    # FIFO buffers + static data must fit 64 KB.
    stack_size=11264,
)

CORE = """
func.call @mel_kernel_simple(%of_in, %of_out) : (memref<400xi16>, memref<80xi8>) -> ()
"""

if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
