// How whole-sequence attention is cut into attention_stream units and
// written as the kernel's planes, and how the units' outputs are put back:
// one copy for the attention model (server/models/attention_model.cc), the
// golden recipe (kernels/tools/make_golden.cc) and the tests. Plain host
// code.
//
// Unit u of a problem is query tile u % SeqTiles(lq) of head
// u / SeqTiles(lq), against the key tiles some row of it sees
// (UnitTiles). Units go in rounds of kStreamLanes, one per core of the
// design's column; a round's key tiles travel step-major (step t of lanes
// 0..3, then step t + 1), for as many steps as its longest unit takes, and
// every record of the round carries that step count. A round that the
// units do not fill is padded with empty units (rows 0, no key tiles),
// whose outputs are discarded.
#ifndef NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_UNITS_H_
#define NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_UNITS_H_

#include <cstddef>
#include <cstdint>

#include "kernels/attention/attention_seq.h"
#include "kernels/attention_stream/attention_stream_kernel.h"

namespace npuk::stream {

// The problem's inputs and scales (the request's, validated by
// CheckSeqAttention): the fields of SeqAttentionArgs but the output.
struct Problem {
  const int8_t* q;  // [n][lq][64]
  const int8_t* k;  // [n][lk][64]
  const int8_t* v;  // [n][lk][64]
  int32_t n;
  int32_t lq;
  int32_t lk;
  bool causal;
  ScoreScale score_scale;
  online::OutputScale output_scale;
};

// n * SeqTiles(lq).
size_t UnitCount(const Problem& p);
// The key tiles unit u takes, in [1, SeqTiles(lk)] (SeqTilePairs's count).
int32_t UnitTiles(const Problem& p, size_t u);
// Items the units [first, first + count) take: count rounded up to whole
// rounds.
size_t UnitItems(size_t count);
// Bytes of the kv plane of those units (StepSpan of their records).
size_t UnitStepBytes(const Problem& p, size_t first, size_t count);

// Writes units [first, first + count) as UnitItems(count) items from item
// 0 of the planes: q (4096 B per item), record (kStreamRecordBytes per
// item) and kv (UnitStepBytes(p, first, count) bytes). A null plane is not
// written, so the small planes and the stepped one can be written apart
// (the daemon writes kv straight into the device argument).
void WriteUnits(const Problem& p, size_t first, size_t count, uint8_t* q,
                uint8_t* records, uint8_t* kv);

// Copies the rows of units [first, first + count) from their items' outputs
// (`outputs`: 4096 B per item, item 0 being unit `first`) into `out`, the
// problem's [n][lq][64] output.
void ReadUnits(const Problem& p, size_t first, size_t count,
               const uint8_t* outputs, int8_t* out);

}  // namespace npuk::stream

#endif  // NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_UNITS_H_
