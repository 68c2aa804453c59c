// The attention_stream kernel entry, compiled for the AIE2 cores (Peano)
// and for the host, where it is the reference. A core keeps one query tile
// and its running online-softmax state resident and takes the key tiles of
// its head one after the other off an object FIFO, one call per key tile;
// the call of the last step writes the query tile's int8 output. No host
// round trip per key tile and no host fold: the output is final
// (kernels/attention_stream/README.md). Freestanding: <cstdint>/<cstddef>
// and the freestanding kernels/attention headers only.
#ifndef NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_KERNEL_H_
#define NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_KERNEL_H_

#include <cstddef>
#include <cstdint>

namespace npuk {

inline constexpr int32_t kStreamTile = 64;  // rows, keys and dims
inline constexpr size_t kStreamMatrixBytes = kStreamTile * kStreamTile;
// One step of one lane: a key tile and its value tile, k then v.
inline constexpr size_t kStreamStepBytes = 2 * kStreamMatrixBytes;  // 8192
// Key tiles per unit at most: 4096 keys.
inline constexpr int32_t kStreamMaxSteps = 64;
// Units per round: the cores of the design's column. A round's key tiles
// travel step-major, one tile per lane per step (the kv argument's layout,
// kernels/registry/kernel_spec.h TensorDecl::stepped).
inline constexpr int32_t kStreamLanes = 4;

// A unit's parameter record: ten little-endian int32 after its q tile.
struct AttentionStreamRecord {
  int32_t score_multiplier;  // ScoreScale (kernels/common/score_scale.h)
  int32_t score_shift;
  int32_t output_multiplier;  // online::OutputScale of 1 / output_scale
  int32_t output_shift;
  int32_t rows;      // rows of the query tile inside the sequence, [0, 64]
  int32_t keys;      // lk: keys of the sequence
  int32_t diag;      // lk without the mask, q0 + lk - lq + 1 with it
  int32_t tiles;     // key tiles this unit takes, [0, steps]
  int32_t steps;     // key-tile steps of the unit's round (every lane's the
                     // same: the round's longest unit), [1, 64]
  int32_t reserved;  // 0
};
static_assert(sizeof(AttentionStreamRecord) == 40);
inline constexpr size_t kStreamRecordBytes = sizeof(AttentionStreamRecord);
// Device argument 0 per unit: the q tile, then the record.
inline constexpr size_t kStreamQrecBytes =
    kStreamMatrixBytes + kStreamRecordBytes;  // 4136
// The word of the record that holds `steps`, counted from the start of the
// q|record item (the design's core loop reads it as its trip count).
inline constexpr size_t kStreamStepsWord =
    (kStreamMatrixBytes + offsetof(AttentionStreamRecord, steps)) / 4;

// The record as every face uses it: rows, tiles and steps clamped to
// their ranges (tiles also to steps), so any bytes are defined.
constexpr AttentionStreamRecord ClampStreamRecord(AttentionStreamRecord r) {
  const auto clamp = [](int32_t x, int32_t lo, int32_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
  };
  r.rows = clamp(r.rows, 0, kStreamTile);
  r.steps = clamp(r.steps, 0, kStreamMaxSteps);
  r.tiles = clamp(r.tiles, 0, r.steps);
  return r;
}

// The state a core keeps between steps, in int32 words (a buffer of the
// design, seq::portable::QueryTileState's bytes).
inline constexpr size_t kStreamStateWords = 4240;

}  // namespace npuk

// One step of a unit. qrec: the unit's q tile (int8 [64][64], rows beyond
// `rows` zero) and its record (kStreamQrecBytes, 4-byte aligned: the
// design's fifo holds it as 1034 int32); kv: key tile `step` of the
// unit, k then v int8 [64][64] (keys beyond the sequence zero); state:
// kStreamStateWords words kept between the calls of one unit; out: the
// unit's int8 [64][64] output, written by the call with step == steps - 1
// (rows that see no key and rows >= `rows` zero). Step 0 clears the state;
// steps >= tiles take nothing (the round's shorter units drain them).
extern "C" void attention_stream_step(const int32_t* qrec, const int8_t* kv,
                                      int32_t* state, int8_t* out,
                                      int32_t step);

#endif  // NPUK_KERNELS_ATTENTION_STREAM_ATTENTION_STREAM_KERNEL_H_
