// An AIE2 (AIE-ML, Phoenix NPU1) core cycle model over the operations the
// vector vocabulary's host face counts (kernels/vec/vec.h). MODELLED, not
// measured: no NPU here. kernels/README.md ("Cycle model") lists every
// figure with its source and the calibration.
//
// Issue rules (AMD AM020, "AIE-ML Processor" and "Summary"; mlir-aie
// programming_guide/section-4/section-4c):
//  - one VLIW bundle per cycle; in a software-pipelined loop the slots run
//    in parallel, so a loop costs its busiest slot:
//      vector multiplier (mul/mac/mmul): 1 instruction per cycle
//      vector shift/shuffle/add path:    1 instruction per cycle
//      srs/ups (accumulator moves):      1 instruction per cycle
//      loads: 2 units of 256 bits (a 512-bit vector takes both for one
//             cycle; scalar loads take one unit)
//      store: 1 unit of 256 bits (a 512-bit vector store takes 2 cycles)
//      scalar ALU: 1 operation per cycle
//    plus a fixed cost per pipelined loop entry (prologue/epilogue),
//    calibrated below;
//  - code outside pipelined loops (no LoopEntry in its region) issues
//    scalar operations at a calibrated cycles-per-operation;
//  - 64-bit multiplies are __muldi3 calls (AIE2's scalar unit multiplies
//    32x32 -> 32 only; Peano's legaliser, Xilinx/llvm-aie
//    AIE2LegalizerInfo.cpp) and 32-bit divisions __udivsi3 calls (no
//    divider), each at a fixed cost.
#ifndef NPUK_KERNELS_VEC_CYCLE_MODEL_H_
#define NPUK_KERNELS_VEC_CYCLE_MODEL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/vec/vec.h"

namespace npuk::vec {

struct Aie2Params {
  // Phoenix NPU clock at the default power level: 1.024 GHz
  // (amd/xdna-driver src/driver/amdxdna/npu1_regs.c DPM table; up to 1.6).
  double clock_hz = 1.024e9;
  double load_bits_per_cycle = 512;  // 2 load units x 256 bits
  double load_ops_per_cycle = 2;
  double store_bits_per_cycle = 256;  // 1 store unit x 256 bits
  // Calibrated (Calibration()): mlir-aie section-4c's vectorised int16
  // scale of 1024 elements, 72 cycles measured, 64 from the store slot.
  double loop_overhead_cycles = 8;
  // Calibrated: the same guide's scalar scale loop, ~10,250 cycles for
  // 1024 elements at 3 counted operations each.
  double scalar_cpi = 10250.0 / 3072.0;
  // compiler-rt's __muldi3 on a 32-bit core without a widening multiply:
  // 4 partial 16x16 products and 2 cross 32x32 products, ~14 adds/shifts/
  // masks for the carries, call/return and argument moves: ~40 cycles
  // (an assumption, consistent with npu_audit's ~1.8 ms per scalar frame).
  double muldi3_cycles = 40;
  // __udivsi3: a shift-subtract loop, ~1 iteration per quotient bit plus
  // call overhead: ~50 cycles (assumption).
  double udivsi3_cycles = 50;
};

inline constexpr Aie2Params kAie2;

// Cycles of one region (see the issue rules above).
double RegionCycles(const OpCounts& ops, const Aie2Params& p = kAie2);
// Cycles of a whole profiled call: the sum over its regions.
double ProfileCycles(const Profile& profile, const Aie2Params& p = kAie2);
// The slot that bounds a region ("vmac", "valu", "vmove", "load", "store",
// "scalar", or "scalar code").
std::string_view BoundingSlot(const OpCounts& ops, const Aie2Params& p = kAie2);

// The calibration against mlir-aie's published figures: the two reference
// kernels counted through this vocabulary, the published cycles, what the
// model gives with the parameters in kAie2, and the residual.
struct CalibrationPoint {
  std::string name;
  double published_cycles;
  double model_cycles;
  double residual;  // model / published - 1
};
struct Calibration {
  CalibrationPoint vector_scale;  // derives loop_overhead_cycles
  CalibrationPoint scalar_scale;  // derives scalar_cpi
  double derived_loop_overhead;
  double derived_scalar_cpi;
};
Calibration Calibrate(const Aie2Params& p = kAie2);

// Which kernel code an NPU design runs.
enum class Variant { kVector, kScalar };
std::string_view VariantName(Variant v);

// Cycles for one core call of a kernel and how many items that call does:
// the mel family's vector kernels take 16 frames per call, everything else
// one item.
struct KernelCost {
  bool known = false;
  double cycles_per_call = 0;
  int items_per_call = 1;
  // A stepped kernel (attention_stream): cycles_per_call is a unit of one
  // step (its state cleared, the step, the output stage), and each further
  // step costs cycles_per_step (StepCycles).
  double cycles_per_step = 0;
};

// The registered kernel `name` (mel, attention, passthrough, ...) priced
// for `variant`: vector kernels from their counted host-face run, scalar
// (today's deployed) kernels from the operation counts of their loops
// (CountScalar* in cycle_model.cc). Computed once per kernel and cached.
// Every registered kernel is known (cycle_model_registry_test checks);
// an unknown name returns known = false.
KernelCost CostOf(std::string_view name, Variant variant);

// Cycles for `items` items split over `cores` cores (each core runs
// ceil(items / cores) items, in whole calls).
double CoreCycles(const KernelCost& cost, uint64_t items, int cores);

// A stepped kernel's run: `rounds` rounds of one unit per core, taking
// `round_steps` steps in all (every core of a round runs the round's
// steps, at least one): rounds * cycles_per_call + (round_steps - rounds) *
// cycles_per_step. A round of no steps (padding) costs nothing.
double StepCycles(const KernelCost& cost, uint64_t rounds,
                  uint64_t round_steps);

// Attention over whole sequences on its vector kernel (kernels/attention/
// attention_seq_vec.h), which no NPU design runs yet: the modelled core
// time of `heads` heads of lq queries over lk keys on `cores` cores of one
// column. Each unit (query tile) is counted through the host face once per
// head shape (the counts depend on the shape and mask, not the data) and
// units go to the least loaded core. DMA assumes each unit streams its own
// K/V tiles from the shim (no mem-tile broadcast between the cores of a
// column, an upper bound) at `dma_bytes_per_s`.
struct SeqAttentionModel {
  uint64_t tile_pairs = 0;     // key-tile steps over all units
  double cycles_per_pair = 0;  // one core, step cycles averaged
  double core_cycles = 0;      // the busiest core
  uint64_t dma_bytes = 0;      // Q, K/V tiles and the output
  double compute_s = 0;        // core_cycles at the clock
  double dma_s = 0;
  double seconds = 0;  // max(compute, DMA): double-buffered FIFOs
};
SeqAttentionModel ModelSeqAttention(int heads, int lq, int lk, bool causal,
                                    int cores, double dma_bytes_per_s,
                                    const Aie2Params& p = kAie2);

}  // namespace npuk::vec

#endif  // NPUK_KERNELS_VEC_CYCLE_MODEL_H_
