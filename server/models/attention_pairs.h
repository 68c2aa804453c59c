// How the attention model (attention_model.h) cuts a whole-sequence request
// into (query tile, key tile) pairs for the internal kernel attention_pair
// and puts the rows back together from the pairs' partials. Pure host code:
// no batcher, no gRPC.
//
// A pair item (kernels/attention_pair): q, k, v tiles, 4096 B int8 each, rows
// past the sequence zero; a 24 B record {score_multiplier, score_shift,
// rows, keys, diag, 0} (int32); out 64 rows x {m_t, S_t, o_t[64]} int32,
// all zero for a row that sees no key of the tile. Row r sees the keys
// j < min(keys, r + diag) of the tile; diag = 64 without the causal mask.
//
// Pairs go out in request order: head, then query tile, then key tile. The
// combiner must take them in that order, which puts every row's key tiles
// in increasing order: the order seq::AttentionSeqReference mixes them in,
// so the bytes are the same.
#ifndef NPUK_SERVER_MODELS_ATTENTION_PAIRS_H_
#define NPUK_SERVER_MODELS_ATTENTION_PAIRS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "kernels/common/softmax.h"

namespace npuk::attnpair {

inline constexpr int32_t kTile = 64;  // tokens per tile, dims per token
inline constexpr size_t kTileBytes = kTile * kTile;
inline constexpr size_t kRecordBytes = 6 * sizeof(int32_t);
inline constexpr size_t kRowWords = 2 + kTile;  // m_t, S_t, o_t[64]
inline constexpr size_t kOutBytes = kTile * kRowWords * sizeof(int32_t);

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

// One pair: head, query tile, key tile.
struct Pair {
  int32_t head = 0;
  int32_t qtile = 0;
  int32_t ktile = 0;
};

// The key tiles query tile `qtile` takes: those some row of it sees.
int32_t KeyTiles(const Problem& p, int32_t qtile);
// Every pair of the request (the cost: SeqTilePairs per head).
size_t PairCount(const Problem& p);
// The pair after `at`; false after the last one.
bool Next(const Problem& p, Pair* at);

// Writes pair `at`'s q, k and v tiles (kTileBytes each: the kernel's
// three input planes) and its record (kRecordBytes).
void WritePair(const Problem& p, const Pair& at, uint8_t* q, uint8_t* k,
               uint8_t* v, uint8_t* record);

// Folds the pairs' partials into the output, one query tile at a time.
class Combiner {
 public:
  // `out` is the request's output, [n][lq][64] int8.
  Combiner(const Problem& p, int8_t* out);

  // The partials (kOutBytes, any alignment) of the next pair in request
  // order, `at`. A query tile's rows are written to the output when its
  // last key tile is taken.
  void Take(const Pair& at, const uint8_t* partials);

 private:
  const Problem p_;
  const softmax::ExpParams exp_;
  int8_t* const out_;
  int32_t max_[kTile];
  uint32_t weight_[kTile];
  bool seen_[kTile];
  std::vector<int32_t> acc_;  // [64][64], Q15
};

}  // namespace npuk::attnpair

#endif  // NPUK_SERVER_MODELS_ATTENTION_PAIRS_H_
