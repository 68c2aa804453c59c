#!/usr/bin/python3
"""attention_stream on npu1_1col: each of the column's 4 cores keeps one
query tile and its online-softmax state resident and takes its head's key
tiles off an object FIFO one at a time; the last step writes the unit's
int8 output. No host round trip per key tile, no host fold.

Per round of 4 units (one per core, aie_design.fifo_ops's column design):
  of_q    q tile and record, 4136 B per unit (1034 i32), split by the mem
          tile, depth 1: the tile stays acquired for the whole unit;
  of_kv   the round's key tiles, step-major (step t of cores 0..3, then
          step t + 1), 8192 B per core per step (k then v), split by the
          mem tile a round-step at a time, depth 2 so the DMA brings step
          t + 1 while the core computes step t. Stepped
          (aie_design.Fifo.stepped): the core body's own loop takes it, as
          many steps as the record's `steps` word says (the round's longest
          unit; every record of the round has the same);
  of_out  the unit's int8 [64, 64] output, joined by the mem tile.
The running state (seq::portable::QueryTileState, 16960 B) is a buffer of
each core (Design.buffers); attention_stream_step clears it at step 0.

Tile memory: q 4136 + kv 2 x 8192 + out 4096 + state 16960 + stack 15360 =
56936 B of 64 KB (stack_sizes.py checks the stack). The runtime sequence
for N units whose rounds take S steps in all moves S x 4 x 8192 B on of_kv;
the daemon builds it per run (kernels/tools/txn/designs.h, BuildSequence
with the run's step bytes), and --steps gives the one for S = N / 4 x
--steps.
Usage: attention_stream_design.py --n 16 [--steps 24] [-o f]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "txn_design"))
import aie_design  # noqa: E402

QREC_WORDS = 1034  # 4096 B of q, then the 40 B record
STEPS_WORD = 1032  # the record's `steps` (kStreamStepsWord)
STATE_WORDS = 4240  # kStreamStateWords

DESIGN = aie_design.Design(
    kernel="attention_stream",
    func="attention_stream_step",
    obj="attention_stream_kernel.o",
    fifos=(
        aie_design.Fifo("of_out", "i8", 4096, 4096, False, 2, 0, depth=1),
        aie_design.Fifo("of_q", "i32", QREC_WORDS, 4 * QREC_WORDS, True, 0,
                        1, depth=1),
        aie_design.Fifo("of_kv", "i8", 8192, 8192, True, 1, 2, depth=2,
                        stepped=True),
    ),
    # attention_stream_step(const int32_t* qrec, const int8_t* kv,
    # int32_t* state, int8_t* out, int32_t step).
    kernel_args=("memref<1034xi32>", "memref<8192xi8>", "memref<4240xi32>",
                 "memref<4096xi8>", "i32"),
    # Measured worst call path (kernels/tools/stack_sizes.py, host proxy):
    # attention_stream_step with the inlined TakeKeyTile, whose frame holds
    # the 8 KB prepared key tile plus one row's scores, exponentials and
    # probabilities and the limits; x1.5 + 512 B for runtime helpers,
    # rounded up.
    stack_size=15360,
    depth=2,
    buffers=(("state", "i32", STATE_WORDS),),
)


def CORE(k):
    """Core k of the column: the unit's record gives the trip count of the
    key-tile loop; each step takes one k|v tile off of_kv."""
    kv = aie_design.core_fifo(DESIGN, DESIGN.fifos[2], 0, k)
    view = "!aie.objectfifosubview<memref<8192xi8>>"
    return f"""
%c_steps = arith.constant {STEPS_WORD} : index
%steps_w = memref.load %of_q[%c_steps] : memref<{QREC_WORDS}xi32>
%steps = arith.index_cast %steps_w : i32 to index
scf.for %t = %c0 to %steps step %c1 {{
%s_of_kv = aie.objectfifo.acquire @{kv}(Consume, 1) : {view}
%of_kv = aie.objectfifo.subview.access %s_of_kv[0] : {view} -> memref<8192xi8>
%t_i32 = arith.index_cast %t : index to i32
func.call @attention_stream_step(%of_q, %of_kv, %buf_state, %of_out, %t_i32) : (memref<{QREC_WORDS}xi32>, memref<8192xi8>, memref<{STATE_WORDS}xi32>, memref<4096xi8>, i32) -> ()
aie.objectfifo.release @{kv}(Consume, 1)
}}
"""


if __name__ == "__main__":
    aie_design.main(DESIGN, CORE, sys.argv[1:])
