#include "server/models/attention_pairs.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention/attention_seq.h"

namespace npuk::attnpair {
namespace {

int32_t RowsOf(const Problem& p, int32_t qtile) {
  return std::min(kTile, p.lq - qtile * kTile);
}

void PutWord(uint8_t* at, int32_t v) { std::memcpy(at, &v, sizeof v); }

int32_t Word(const uint8_t* at) {
  int32_t v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

// Rows [row0, row0 + rows) of a [len][64] head, zero-padded to a tile.
void CopyTile(const int8_t* head, int32_t row0, int32_t rows, uint8_t* dest) {
  const size_t bytes = static_cast<size_t>(rows) * kTile;
  std::memcpy(dest, head + static_cast<size_t>(row0) * kTile, bytes);
  std::memset(dest + bytes, 0, kTileBytes - bytes);
}

}  // namespace

int32_t KeyTiles(const Problem& p, int32_t qtile) {
  const int32_t q0 = qtile * kTile;
  const int32_t end = p.causal ? q0 + RowsOf(p, qtile) + p.lk - p.lq
                               : p.lk;  // >= 1 in contract
  return SeqTiles(std::min(std::max(end, 1), p.lk));
}

size_t PairCount(const Problem& p) {
  return static_cast<size_t>(p.n) * SeqTilePairs(p.lq, p.lk, p.causal);
}

bool Next(const Problem& p, Pair* at) {
  if (++at->ktile < KeyTiles(p, at->qtile)) return true;
  at->ktile = 0;
  if (++at->qtile < SeqTiles(p.lq)) return true;
  at->qtile = 0;
  return ++at->head < p.n;
}

void WritePair(const Problem& p, const Pair& at, uint8_t* q, uint8_t* k,
               uint8_t* v, uint8_t* record) {
  const int32_t q0 = at.qtile * kTile;
  const int32_t k0 = at.ktile * kTile;
  const int32_t rows = RowsOf(p, at.qtile);
  const int32_t keys = std::min(kTile, p.lk - k0);
  const size_t head_q = static_cast<size_t>(at.head) * p.lq * kTile;
  const size_t head_k = static_cast<size_t>(at.head) * p.lk * kTile;
  CopyTile(p.q + head_q, q0, rows, q);
  CopyTile(p.k + head_k, k0, keys, k);
  CopyTile(p.v + head_k, k0, keys, v);
  // Row r of this query tile sees keys up to q0 + r + lk - lq (causal).
  const int32_t diag = p.causal ? q0 + p.lk - p.lq + 1 - k0 : kTile;
  const int32_t words[6] = {
      p.score_scale.multiplier, p.score_scale.shift, rows, keys, diag, 0};
  for (int i = 0; i < 6; ++i) PutWord(record + 4 * i, words[i]);
}

Combiner::Combiner(const Problem& p, int8_t* out)
    : p_(p),
      exp_(softmax::MakeExpParams(p.score_scale.multiplier,
                                  p.score_scale.shift)),
      out_(out),
      acc_(kTileBytes) {
  std::fill(std::begin(seen_), std::end(seen_), false);
}

void Combiner::Take(const Pair& at, const uint8_t* partials) {
  const int32_t rows = RowsOf(p_, at.qtile);
  if (at.ktile == 0) std::fill(std::begin(seen_), std::end(seen_), false);
  for (int32_t r = 0; r < rows; ++r) {
    const uint8_t* row = partials + static_cast<size_t>(r) * kRowWords * 4;
    const int32_t m_t = Word(row);
    const uint32_t s_t = static_cast<uint32_t>(Word(row + 4));
    if (s_t == 0) continue;  // the row sees no key of this tile
    int32_t* acc = acc_.data() + static_cast<size_t>(r) * kTile;
    if (!seen_[r]) {
      seen_[r] = true;
      max_[r] = m_t;
      weight_[r] = s_t;
      std::memcpy(acc, row + 8, kTile * sizeof(int32_t));
      continue;
    }
    const online::Mix mix =
        online::MixWeights(max_[r], weight_[r], m_t, s_t, exp_);
    max_[r] = mix.max;
    weight_[r] = mix.weight;
    cpu::MixPartials(acc, row + 8, mix);
  }
  if (at.ktile + 1 < KeyTiles(p_, at.qtile)) return;
  int8_t* out =
      out_ + (static_cast<size_t>(at.head) * p_.lq + at.qtile * kTile) * kTile;
  for (int32_t r = 0; r < rows; ++r) {
    // A row that saw no key is out of contract (causal with Lq > Lk,
    // refused before this); zeros, as the reference writes.
    if (!seen_[r]) {
      std::memset(out + r * kTile, 0, kTile);
      continue;
    }
    cpu::OutputPartials(acc_.data() + static_cast<size_t>(r) * kTile,
                        p_.output_scale, out + r * kTile);
  }
}

}  // namespace npuk::attnpair
