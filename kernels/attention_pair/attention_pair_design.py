#!/usr/bin/python3
"""attention_pair on npu1_1col: q|k|v tile pairs and per-pair records in,
the rows' online-softmax partials out.

The column design of attention (aie_design.fifo_ops): the mem tile splits
each round of 4 q|k|v pairs to the 4 cores and joins their partials; the
records go shim -> all 4 cores as one broadcast round, core k reading
record k.

Per pair: 12288 B q|k|v and a 24 B record (six int32: score multiplier,
score shift, rows, keys, diag, 0) in, 16896 B out (64 rows x {m_t, S_t,
o_t[64]} int32). The record is a stream of its own (argument 1), so every
pair of a run has its own mask and score scale.

Depth 1, not 2: double-buffered FIFOs would take 2 x (12288 + 16896 + 4 x
24) = 58560 B of the core's 64 KB, and with the entry's stack (one 8 KB
prepared key tile) that does not fit. Single-buffered, a core cannot take
its next pair while its partials drain, which costs DMA overlap, not bytes.
Usage: attention_pair_design.py --n 16 [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402

RECORD_WORDS = 6

DESIGN = aie_design.Design(
    kernel="attention_pair",
    func="attention_pair_64x64",
    obj="attention_pair_kernel.o",
    fifos=(
        aie_design.Fifo("of_out", "i32", 4224, 16896, False, 2, 0),
        aie_design.Fifo("of_qkv", "i8", 12288, 12288, True, 0, 1),
        # Broadcast to the column's cores, a round of records per element
        # (aie_design.Fifo.broadcast): core k reads record k.
        aie_design.Fifo("of_params", "i32", RECORD_WORDS, 4 * RECORD_WORDS,
                        True, 1, 2, broadcast=True),
    ),
    # attention_pair_64x64(const int8_t* qkv, int32_t* out, int32_t
    # multiplier, int32_t shift, int32_t rows, int32_t keys, int32_t diag):
    # the record is read on the core (CORE below), its first five words
    # passed by value.
    kernel_args=("memref<12288xi8>", "memref<4224xi32>", "i32", "i32", "i32",
                 "i32", "i32"),
    # Measured worst call path (kernels/tools/stack_sizes.py, host proxy):
    # attention_pair_64x64 with the inlined PairPartials, whose frame holds
    # the 8 KB prepared key tile (k^T and v) plus the limits and one row's
    # int32 scores, exponentials and probabilities; x1.5 + 512 B for runtime
    # helpers, rounded up, is checked by ctest npuk_design_stacks (and on
    # the Peano object by the AIE build). Stack + FIFO buffers + static data
    # must fit 64 KB.
    stack_size=15360,
    depth=1,
)


def CORE(k):
    """Core k of the column: its pair's record is words 6k .. 6k+4 of the
    broadcast round (word 6k+5 is reserved)."""
    words = RECORD_WORDS * DESIGN.cores
    names = ("mult", "shift", "rows", "keys", "diag")
    lines = []
    for i, name in enumerate(names):
        lines.append(f"%r{i} = arith.constant {RECORD_WORDS * k + i} : index")
        lines.append(f"%{name} = memref.load %of_params[%r{i}] : "
                     f"memref<{words}xi32>")
    args = ", ".join(f"%{n}" for n in names)
    lines.append(
        f"func.call @attention_pair_64x64(%of_qkv, %of_out, {args}) : "
        "(memref<12288xi8>, memref<4224xi32>, i32, i32, i32, i32, i32) -> ()")
    return "\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
