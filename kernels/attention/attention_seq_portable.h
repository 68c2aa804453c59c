// The sequence attention's portable row primitives and, built on them, its
// tile loop (attention_seq_impl.inc) in npuk::seq::portable: the plain
// loops, k transposed so the score loop runs over contiguous keys (it
// streams on the AIE core, as attention_64x64's does).
//
// One definition for two users: the reference (attention_seq.cc,
// seq::AttentionSeqReference) and the stream kernel's AIE entry
// (kernels/attention_stream/attention_stream_kernel.cc, TakeKeyTile), so
// everything here is inline and freestanding (Peano compiles it:
// <cstdint>/<cstddef> and kernels/common only).
#ifndef NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_PORTABLE_H_
#define NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_PORTABLE_H_

#include <cstddef>
#include <cstdint>

#include "kernels/attention/attention_seq.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/softmax.h"

namespace npuk::seq::portable {

inline constexpr int kSeqT = 64;  // tokens per tile
inline constexpr int kSeqD = 64;  // dims per token

// k transposed; v as it comes.
struct PreparedTile {
  int8_t kt[kSeqD * kSeqT];
  int8_t v[kSeqT * kSeqD];
};

inline void PrepareTile(const int8_t* k, const int8_t* v, int keys,
                        PreparedTile* t) {
  for (int j = 0; j < kSeqT; ++j) {
    for (int d = 0; d < kSeqD; ++d) {
      t->kt[d * kSeqT + j] = j < keys ? k[j * kSeqD + d] : int8_t{0};
      t->v[j * kSeqD + d] = j < keys ? v[j * kSeqD + d] : int8_t{0};
    }
  }
}

inline void RowScores(const int8_t* q, const PreparedTile& t, int32_t* score) {
  for (int j = 0; j < kSeqT; ++j) score[j] = 0;
  for (int d = 0; d < kSeqD; ++d) {
    const int16_t qd = q[d];
    for (int j = 0; j < kSeqT; ++j) score[j] += qd * t.kt[d * kSeqT + j];
  }
}

inline void RowValues(const int32_t* p, const PreparedTile& t, int32_t* o) {
  for (int c = 0; c < kSeqD; ++c) o[c] = 0;
  for (int j = 0; j < kSeqT; ++j) {
    const int16_t pj = static_cast<int16_t>(p[j]);  // <= 32767
    if (pj == 0) continue;
    for (int c = 0; c < kSeqD; ++c) o[c] += pj * t.v[j * kSeqD + c];
  }
}

inline uint32_t RowExp(const int32_t* score, int lim, int32_t row_max,
                       const softmax::ExpParams& params, int32_t* e) {
  uint32_t sum = 0;
  for (int j = 0; j < kSeqT; ++j) {
    if (j < lim) {
      const uint32_t a = static_cast<uint32_t>(row_max - score[j]);
      e[j] = softmax::Exp2NegQ15(softmax::Exponent(a, params));
    } else {
      e[j] = 0;
    }
    sum += static_cast<uint32_t>(e[j]);
  }
  return sum;
}

// The reference prepares every key tile where it is used.
inline PreparedTile* HeadCache(int32_t) { return nullptr; }

inline void MixRow(int32_t* acc, const int32_t* o, const online::Mix& mix) {
  for (int c = 0; c < kSeqD; ++c) acc[c] = online::MixValue(acc[c], o[c], mix);
}

// The row primitives above as the tile loop's BlockPartials, then the loop.
#include "kernels/attention/attention_seq_rows.inc"
// (not sorted: the loop needs the rows)
#include "kernels/attention/attention_seq_impl.inc"

}  // namespace npuk::seq::portable

#endif  // NPUK_KERNELS_ATTENTION_ATTENTION_SEQ_PORTABLE_H_
