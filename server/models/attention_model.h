// The attention model: attention over whole sequences (issue 15) for any
// KServe v2 client (kernels/attention/README.md, docs/ATTENTION.md).
//
//   inputs  q  INT8 [N, Lq, 64], k and v INT8 [N, Lk, 64]; N = batch x
//              heads, 1 <= Lq, Lk <= 4096
//   params  score_scale   double, default 0.125 (as the tile kernel's)
//           output_scale  double, default 1.0: out ~ softmax(q k^T s) v / os
//           causal        bool, default false: query i sees keys
//                         j <= i + Lk - Lq (needs Lq <= Lk)
//   output  out INT8 [N, Lq, 64]
//
// Plain tile requests (every input [N, 64, 64], neither output_scale nor
// causal sent, N within the tile kernel's max_batch_frames) go to the tile
// kernel `attention` as before (TakesRequest false): same bytes, same runs.
// Everything else is cut into query tiles ("units") for the internal kernel
// `attention_stream` (kernels/attention_stream/attention_stream_units.h):
// each unit is one head's 64 queries against every key tile they see,
// streamed past one NPU core that keeps the unit's online-softmax state
// (seq::AttentionSeqReference's recurrence, so the same bytes on every
// backend) and returns its final int8 rows. Units of different requests
// share device runs; a request's units go out in pieces of at most one run
// (whole rounds of 4), a few pieces in flight at a time, so its staging
// memory stays bounded whatever its length. Runs, batch sizes and
// statistics count query tiles (a tile request's tile is one); responses
// also give tile_pairs, the (query tile, key tile) pairs the units took.
#ifndef NPUK_SERVER_MODELS_ATTENTION_MODEL_H_
#define NPUK_SERVER_MODELS_ATTENTION_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/batching/batcher.h"
#include "server/models/host_model.h"
#include "server/telemetry/model_stats.h"

namespace npuk {

class AttentionPiecePool;  // attention_model.cc

struct AttentionModelOptions {
  std::string backend;     // for the response's "backend" and the platform
  uint32_t instances = 1;  // executors per kernel, for ModelConfig
  // Pieces of one request queued or running at once (>= 1).
  size_t pieces_in_flight = 4;
};

class AttentionModel final : public HostModel {
 public:
  // tiles: the batcher of the tile kernel `attention` (required; the model
  // takes its name). units: the batcher of `attention_stream`, or nullptr
  // when that kernel is disabled (then only tile requests are served).
  // `stats` observes both batchers; none are owned.
  AttentionModel(AttentionModelOptions options, Batcher* tiles, Batcher* units,
                 ModelStats* stats);
  ~AttentionModel() override;

  const KernelSpec& descriptor() const override { return tiles_->kernel(); }
  std::vector<std::string> kernels() const override;
  size_t pending() const override;
  bool TakesRequest(const inference::ModelInferRequest& request) const override;
  void Infer(const inference::ModelInferRequest& request,
             inference::ModelInferResponse* response, absl::Time deadline,
             std::shared_ptr<std::atomic<bool>> cancelled,
             absl::AnyInvocable<void(absl::Status) &&> finish) override;
  void Metadata(inference::ModelMetadataResponse* response) const override;
  void Config(inference::ModelConfig* config) const override;

 private:
  const AttentionModelOptions options_;
  Batcher* const tiles_;
  Batcher* const units_;
  ModelStats* const stats_;
  // Reused staging buffers of the pieces (at most pieces_in_flight idle).
  const std::shared_ptr<AttentionPiecePool> pieces_;
};

}  // namespace npuk

#endif  // NPUK_SERVER_MODELS_ATTENTION_MODEL_H_
