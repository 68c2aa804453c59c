#include "kernels/attention_stream/attention_stream_units.h"

#include <algorithm>
#include <cstring>

namespace npuk::stream {
namespace {

constexpr int32_t kT = kStreamTile;
constexpr size_t kLanes = kStreamLanes;

int32_t QueryTiles(const Problem& p) { return SeqTiles(p.lq); }

int32_t RowsOf(const Problem& p, int32_t qtile) {
  return std::min(kT, p.lq - qtile * kT);
}

// Rows [row0, row0 + rows) of a [len][64] head, zero-padded to a tile.
void CopyTile(const int8_t* head, int32_t row0, int32_t rows, uint8_t* dest) {
  const size_t bytes = static_cast<size_t>(std::max(rows, 0)) * kT;
  if (bytes > 0) {
    std::memcpy(dest, head + static_cast<size_t>(row0) * kT, bytes);
  }
  std::memset(dest + bytes, 0, kStreamMatrixBytes - bytes);
}

int32_t RoundSteps(const Problem& p, size_t first, size_t count, size_t r0) {
  int32_t steps = 1;
  for (size_t i = r0; i < std::min(count, r0 + kLanes); ++i) {
    steps = std::max(steps, UnitTiles(p, first + i));
  }
  return steps;
}

}  // namespace

size_t UnitCount(const Problem& p) {
  return static_cast<size_t>(p.n) * static_cast<size_t>(QueryTiles(p));
}

int32_t UnitTiles(const Problem& p, size_t u) {
  const int32_t qtile = static_cast<int32_t>(u % QueryTiles(p));
  const int32_t q0 = qtile * kT;
  const int32_t end = p.causal ? q0 + RowsOf(p, qtile) + p.lk - p.lq : p.lk;
  return SeqTiles(std::min(std::max(end, 1), p.lk));
}

size_t UnitItems(size_t count) {
  return (count + kLanes - 1) / kLanes * kLanes;
}

size_t UnitStepBytes(const Problem& p, size_t first, size_t count) {
  size_t bytes = 0;
  for (size_t r0 = 0; r0 < count; r0 += kLanes) {
    bytes += static_cast<size_t>(RoundSteps(p, first, count, r0)) * kLanes *
             kStreamStepBytes;
  }
  return bytes;
}

void WriteUnits(const Problem& p, size_t first, size_t count, uint8_t* q,
                uint8_t* records, uint8_t* kv) {
  const int32_t qtiles = QueryTiles(p);
  for (size_t r0 = 0; r0 < UnitItems(count); r0 += kLanes) {
    const int32_t steps = RoundSteps(p, first, count, r0);
    const size_t round_bytes =
        static_cast<size_t>(steps) * kLanes * kStreamStepBytes;
    for (size_t lane = 0; lane < kLanes; ++lane) {
      const size_t item = r0 + lane;
      AttentionStreamRecord r{};
      auto step_at = [&](int32_t t) {
        return kv + (static_cast<size_t>(t) * kLanes + lane) * kStreamStepBytes;
      };
      r.steps = steps;
      if (item < count) {
        const size_t u = first + item;
        const int32_t head = static_cast<int32_t>(u / qtiles);
        const int32_t qtile = static_cast<int32_t>(u % qtiles);
        const int32_t q0 = qtile * kT;
        const size_t head_q = static_cast<size_t>(head) * p.lq * kT;
        const size_t head_k = static_cast<size_t>(head) * p.lk * kT;
        r.score_multiplier = p.score_scale.multiplier;
        r.score_shift = p.score_scale.shift;
        r.output_multiplier = p.output_scale.multiplier;
        r.output_shift = p.output_scale.shift;
        r.rows = RowsOf(p, qtile);
        r.keys = p.lk;
        // Row r of this query tile sees keys up to q0 + r + lk - lq.
        r.diag = p.causal ? q0 + p.lk - p.lq + 1 : p.lk;
        r.tiles = UnitTiles(p, u);
        if (q != nullptr) {
          CopyTile(p.q + head_q, q0, r.rows, q + item * kStreamMatrixBytes);
        }
        for (int32_t t = 0; kv != nullptr && t < r.tiles; ++t) {
          const int32_t keys = std::min(kT, p.lk - t * kT);
          CopyTile(p.k + head_k, t * kT, keys, step_at(t));
          CopyTile(p.v + head_k, t * kT, keys, step_at(t) + kStreamMatrixBytes);
        }
      } else if (q != nullptr) {
        std::memset(q + item * kStreamMatrixBytes, 0, kStreamMatrixBytes);
      }
      // The steps this lane does not take are zero tiles.
      for (int32_t t = r.tiles; kv != nullptr && t < steps; ++t) {
        std::memset(step_at(t), 0, kStreamStepBytes);
      }
      if (records != nullptr) {
        std::memcpy(records + item * kStreamRecordBytes, &r, sizeof r);
      }
    }
    if (kv != nullptr) kv += round_bytes;
  }
}

void ReadUnits(const Problem& p, size_t first, size_t count,
               const uint8_t* outputs, int8_t* out) {
  const int32_t qtiles = QueryTiles(p);
  for (size_t i = 0; i < count; ++i) {
    const size_t u = first + i;
    const int32_t head = static_cast<int32_t>(u / qtiles);
    const int32_t qtile = static_cast<int32_t>(u % qtiles);
    const size_t row0 = static_cast<size_t>(head) * p.lq + qtile * kT;
    std::memcpy(out + row0 * kT, outputs + i * kStreamMatrixBytes,
                static_cast<size_t>(RowsOf(p, qtile)) * kT);
  }
}

}  // namespace npuk::stream
