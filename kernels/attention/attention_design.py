#!/usr/bin/python3
"""attention on npu1_1col: q|k|v tiles and per-tile score scales in, out.

The column design (aie_design.fifo_ops): the mem tile splits each round of
4 q|k|v tiles to the 4 cores and joins their outputs; the score scales go
shim -> all 4 cores as one broadcast round.

Per tile: 12288 B q|k|v and 8 B of runtime parameters (int32 multiplier,
int32 shift: the tile's ScoreScale) in, 4096 B out. The parameters travel
as a stream of their own (argument 1) so that every tile of a batch can
have its own score_scale in one run and no instruction patching is needed.
Usage: attention_design.py --n 16 [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402

DESIGN = aie_design.Design(
    kernel="attention",
    func="attention_64x64",
    obj="attention_kernel.o",
    fifos=(
        aie_design.Fifo("of_out", "i8", 4096, 4096, False, 2, 0),
        aie_design.Fifo("of_qkv", "i8", 12288, 12288, True, 0, 1),
        # Broadcast to the column's cores, a round of records per element
        # (aie_design.Fifo.broadcast): core k reads record k.
        aie_design.Fifo("of_params", "i32", 2, 8, True, 1, 2,
                        broadcast=True),
    ),
    # attention_64x64(const int8_t* qkv, int8_t* out, int32_t multiplier,
    # int32_t shift): the params view is read on the core (CORE below), its
    # two words passed by value.
    kernel_args=("memref<12288xi8>", "memref<4096xi8>", "i32", "i32"),
    # Measured worst call path (kernels/tools/stack_sizes.py, host proxy):
    # attention_64x64's frame: 5200 B (the 4 KB k^T array plus int32 rows);
    # x1.5 + 512 B for runtime helpers, rounded up, is checked by ctest
    # npuk_design_stacks (and on the Peano object by the AIE build). Stack +
    # FIFO buffers + static data must fit 64 KB.
    stack_size=9216,
)



def CORE(k):
    """Core k of the column: its tile's record is words 2k, 2k+1 of the
    broadcast round."""
    words = 2 * DESIGN.cores
    return f"""
%r0 = arith.constant {2 * k} : index
%r1 = arith.constant {2 * k + 1} : index
%mult = memref.load %of_params[%r0] : memref<{words}xi32>
%shift = memref.load %of_params[%r1] : memref<{words}xi32>
func.call @attention_64x64(%of_qkv, %of_out, %mult, %shift) : (memref<12288xi8>, memref<4096xi8>, i32, i32) -> ()
"""

if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
