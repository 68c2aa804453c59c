#!/usr/bin/python3
"""passthrough on npu1_1col, a column of 4 cores: shim -> mem tile -> cores
(0,2)-(0,5) blocks (one per core per round), cores -> mem tile -> shim the same.

Per item: 4096 int8 (4096 B) in, the same 4096 B out; the core calls
passthrough_4096 once per block. No compute, so on real hardware a wrong
byte is the DMA path, the buffers or the syncs. Usage:
passthrough_design.py --n 16 [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402

# Must match the shim streams of kernels/passthrough/kernel.cc (checked by
# kernels/tools/lint_sequences.py): of_out arg 1 S2MM 0 BD 0 (armed first),
# of_in arg 0 MM2S 0 BD 1.
DESIGN = aie_design.Design(
    kernel="passthrough",
    func="passthrough_4096",
    obj="passthrough_kernel.o",
    fifos=(
        aie_design.Fifo("of_out", "i8", 4096, 4096, False, 1, 0),
        aie_design.Fifo("of_in", "i8", 4096, 4096, True, 0, 1),
    ),
    # A byte loop with no locals: 1 KB is ample (tile: 2 x 2 x 4 KB + this).
    kernel_args=("memref<4096xi8>", "memref<4096xi8>"),
    # Measured worst call path (kernels/tools/stack_sizes.py, host proxy):
    # passthrough_4096: no frame (0 B); x1.5 + 512 B for runtime helpers,
    # rounded up, is checked by ctest npuk_design_stacks (and on the Peano
    # object by the AIE build). Stack + FIFO buffers + static data must fit
    # 64 KB.
    stack_size=1024,
)

CORE = """
func.call @passthrough_4096(%of_in, %of_out) : (memref<4096xi8>, memref<4096xi8>) -> ()
"""

if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
