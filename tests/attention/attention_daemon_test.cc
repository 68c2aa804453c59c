// The attention model (server/models/attention_model.h) end to end: requests
// over the daemon's gRPC edge on every built backend, answers compared byte
// for byte with seq::AttentionSeqReference (the kernel library's portable
// reference, what every backend must reproduce).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/attention/attention_seq.h"
#include "kernels/common/online_softmax.h"
#include "kernels/common/score_scale.h"
#include "tests/integration/daemon_process.h"
#include "tests/reliability/requests.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using npuk::testing::Backends;
using npuk::testing::DaemonProcess;
using npuk::testing::Infer;
using npuk::testing::RandomInt8;
using npuk::testing::Stats;
using ::testing::HasSubstr;

struct Shape {
  int32_t n;
  int32_t lq;
  int32_t lk;
  bool causal = false;
  double score_scale = 0.125;
  double output_scale = 1.0;
};

struct Case {
  Shape shape;
  std::vector<int8_t> q, k, v;
};

Case MakeCase(std::mt19937& rng, Shape s, double sigma = 30) {
  Case c{s, {}, {}, {}};
  c.q = RandomInt8(rng, static_cast<size_t>(s.n) * s.lq * 64, sigma);
  c.k = RandomInt8(rng, static_cast<size_t>(s.n) * s.lk * 64, sigma);
  c.v = RandomInt8(rng, static_cast<size_t>(s.n) * s.lk * 64, 40);
  return c;
}

void AddInput(ModelInferRequest* r, const char* name, int32_t n, int32_t l,
              const std::vector<int8_t>& data) {
  auto* in = r->add_inputs();
  in->set_name(name);
  in->set_datatype("INT8");
  in->add_shape(n);
  in->add_shape(l);
  in->add_shape(64);
  r->add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(data.data()), data.size()));
}

// `plain`: send no output_scale / causal parameter (a tile request when
// the shapes are [N, 64, 64]).
ModelInferRequest Request(const Case& c, bool plain = false) {
  ModelInferRequest r;
  r.set_model_name("attention");
  AddInput(&r, "q", c.shape.n, c.shape.lq, c.q);
  AddInput(&r, "k", c.shape.n, c.shape.lk, c.k);
  AddInput(&r, "v", c.shape.n, c.shape.lk, c.v);
  auto& p = *r.mutable_parameters();
  p["score_scale"].set_double_param(c.shape.score_scale);
  if (!plain) {
    p["output_scale"].set_double_param(c.shape.output_scale);
    p["causal"].set_bool_param(c.shape.causal);
  }
  return r;
}

std::string Expected(const Case& c) {
  std::string out(static_cast<size_t>(c.shape.n) * c.shape.lq * 64, '\0');
  const SeqAttentionArgs args{
      .q = c.q.data(),
      .k = c.k.data(),
      .v = c.v.data(),
      .out = reinterpret_cast<int8_t*>(out.data()),
      .n = c.shape.n,
      .lq = c.shape.lq,
      .lk = c.shape.lk,
      .causal = c.shape.causal,
      .score_scale = QuantizeScoreScale(c.shape.score_scale),
      .output_scale = online::QuantizeOutputScale(c.shape.output_scale)};
  seq::AttentionSeqReference(
      args, 0, static_cast<size_t>(c.shape.n) * SeqTiles(c.shape.lq));
  return out;
}

// Shapes across the contract: lengths 1 ... 4096, partial tiles, causal
// decoder steps, output scales below and above 1.
std::vector<Shape> Shapes() {
  return {{1, 1, 1},
          {2, 64, 64},
          {3, 65, 130},
          {1, 1, 1500},
          {8, 100, 1500, false, 0.05, 0.25},
          {2, 448, 448, true},
          {1, 1, 448, true},
          {2, 70, 200, true, 0.125, 0.5},
          {1, 200, 70},
          {1, 4096, 64},
          {1, 64, 4096, true},
          {1, 3, 4096, false, 0.125, 2.0}};
}

class AttentionModelTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    extra.push_back("--backend=" + GetParam());
    return extra;
  }
};

TEST_P(AttentionModelTest, SequencesAreTheReferencesBytes) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  std::mt19937 rng(15);
  size_t pairs = 0;
  size_t units = 0;
  for (const Shape& s : Shapes()) {
    SCOPED_TRACE(absl::StrCat(s.n, " x ", s.lq, " x ", s.lk,
                              s.causal ? " causal" : "", " os ",
                              s.output_scale));
    const Case c = MakeCase(rng, s);
    ModelInferResponse resp;
    grpc::Status st = Infer(*stub, Request(c), &resp, 120000);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.outputs_size(), 1);
    EXPECT_EQ(resp.outputs(0).name(), "out");
    EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(s.n, s.lq, 64));
    ASSERT_EQ(resp.raw_output_contents(0), Expected(c));
    const size_t want =
        static_cast<size_t>(s.n) * SeqTilePairs(s.lq, s.lk, s.causal);
    EXPECT_EQ(resp.parameters().at("tile_pairs").int64_param(),
              static_cast<int64_t>(want));
    EXPECT_EQ(resp.parameters().at("backend").string_param(), GetParam());
    pairs += want;
    units += static_cast<size_t>(s.n) * SeqTiles(s.lq);
  }
  // Statistics count query tiles.
  EXPECT_EQ(Stats(*stub, "attention").inference_count(), units);
}

// A mixed batch: several requests of different lengths at once share the
// stream kernel's runs, each still exact.
TEST_P(AttentionModelTest, ConcurrentRequestsOfDifferentLengthsShareRuns) {
  DaemonProcess d(Args({"--max_queue_delay_us=attention_stream:20000"}));
  std::mt19937 rng(16);
  std::vector<Case> cases;
  for (int i = 0; i < 8; ++i) {
    const int32_t lk = 1 + static_cast<int32_t>(rng() % 400);
    const int32_t lq = 1 + static_cast<int32_t>(rng() % lk);
    cases.push_back(MakeCase(rng, {1 + i % 3, lq, lk, i % 2 == 0}));
  }
  // And long ones in the same runs: a decoder-like step over 4096 keys and
  // a long unmasked block.
  cases.push_back(MakeCase(rng, {1, 5, 4096, true}));
  cases.push_back(MakeCase(rng, {1, 700, 3000, false, 0.05, 0.3}));
  std::vector<std::string> got(cases.size());
  std::vector<grpc::Status> status(cases.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < cases.size(); ++i) {
    threads.emplace_back([&, i] {
      ModelInferResponse resp;
      status[i] = Infer(*d.stub(), Request(cases[i]), &resp, 120000);
      if (status[i].ok()) got[i] = resp.raw_output_contents(0);
    });
  }
  for (auto& t : threads) t.join();
  size_t units = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(status[i].ok()) << status[i].error_message();
    EXPECT_EQ(got[i], Expected(cases[i])) << "request " << i;
    units +=
        static_cast<size_t>(cases[i].shape.n) * SeqTiles(cases[i].shape.lq);
  }
  const inference::ModelStatistics st = Stats(*d.stub(), "attention");
  EXPECT_EQ(st.inference_count(), units);
  // Fewer runs than the requests' pieces would need alone (each at least
  // one run of at most 16 query tiles): some runs were shared.
  size_t alone = 0;
  for (const Case& c : cases) {
    alone += (static_cast<size_t>(c.shape.n) * SeqTiles(c.shape.lq) + 15) / 16;
  }
  EXPECT_LT(st.execution_count(), alone);
}

// One request in many small runs (one round of 4 query tiles each, several
// in flight, on npu-sim's two executors) gives the one-run bytes.
TEST_P(AttentionModelTest, RequestSplitAcrossManyRunsIsExact) {
  DaemonProcess d(Args({"--max_batch_frames=attention_stream:4"}));
  std::mt19937 rng(17);
  const Case c = MakeCase(rng, {3, 300, 700, true});
  ModelInferResponse resp;
  grpc::Status st = Infer(*d.stub(), Request(c), &resp, 120000);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.raw_output_contents(0), Expected(c));
  const int64_t units = 3 * static_cast<int64_t>(SeqTiles(300));
  EXPECT_EQ(resp.parameters().at("device_runs").int64_param(), (units + 3) / 4);
  EXPECT_LE(resp.parameters().at("batch_frames").int64_param(), 4);
}

// [N, 64, 64] without output_scale/causal is today's tile request (the
// tile kernel's bytes and runs); with them it runs on the stream kernel and
// gives the same bytes.
TEST_P(AttentionModelTest, TileRequestsKeepTheirBytesOnBothPaths) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  std::mt19937 rng(18);
  const Case c = MakeCase(rng, {5, 64, 64});
  const std::string tile =
      npuk::testing::AttentionReference(c.q, c.k, c.v, c.shape.score_scale);
  ASSERT_EQ(Expected(c), tile);
  ModelInferResponse a, b;
  ASSERT_TRUE(Infer(*stub, Request(c, /*plain=*/true), &a).ok());
  ASSERT_TRUE(Infer(*stub, Request(c), &b).ok());
  EXPECT_EQ(a.raw_output_contents(0), tile);
  EXPECT_EQ(b.raw_output_contents(0), tile);
  EXPECT_FALSE(a.parameters().contains("tile_pairs"));  // the tile kernel's
  EXPECT_EQ(b.parameters().at("tile_pairs").int64_param(), 5);
  EXPECT_EQ(Stats(*stub, "attention").inference_count(), 10u);
}

TEST_P(AttentionModelTest, BadInputGetsClearInvalidArgument) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  std::mt19937 rng(19);
  struct Bad {
    const char* what;
    Shape q;  // n, lq used for q; n, lk for k
    int32_t v_n;
    int32_t v_l;
    double output_scale;
    const char* message;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<Bad> bad = {
      {"heads", {2, 10, 20}, 3, 20, 1.0, "same N"},
      {"k vs v length", {1, 10, 20}, 1, 21, 1.0, "same length"},
      {"Lq 0", {1, 0, 20}, 1, 20, 1.0, "Lq = 0"},
      {"Lk over 4096", {1, 1, 4097}, 1, 4097, 1.0, "Lk = 4097"},
      {"output_scale 0", {1, 10, 20}, 1, 20, 0.0, "output_scale"},
      {"output_scale -1", {1, 10, 20}, 1, 20, -1.0, "output_scale"},
      {"output_scale inf", {1, 10, 20}, 1, 20, inf, "output_scale"},
      {"output_scale nan", {1, 10, 20}, 1, 20, std::nan(""), "output_scale"},
      {"causal Lq > Lk", {1, 30, 20, true}, 1, 20, 1.0, "Lq <= Lk"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    Case c = MakeCase(rng, b.q);
    c.v = RandomInt8(rng, static_cast<size_t>(b.v_n) * b.v_l * 64, 30);
    c.shape.output_scale = b.output_scale;
    ModelInferRequest r = Request(c);
    r.mutable_inputs(2)->set_shape(0, b.v_n);
    r.mutable_inputs(2)->set_shape(1, b.v_l);
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr(b.message));
  }
  {  // wrong datatype, unknown parameter, wrong byte count
    const Case c = MakeCase(rng, {1, 10, 20});
    ModelInferRequest r = Request(c);
    r.mutable_inputs(1)->set_datatype("FP32");
    ModelInferResponse resp;
    grpc::Status s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("INT8"));
    r = Request(c);
    (*r.mutable_parameters())["scale"].set_double_param(1);
    s = Infer(*stub, r, &resp);
    EXPECT_THAT(s.error_message(), HasSubstr("unknown parameter 'scale'"));
    r = Request(c);
    r.mutable_raw_input_contents(0)->pop_back();
    s = Infer(*stub, r, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("bytes"));
  }
  // Still serving, and exact.
  const Case c = MakeCase(rng, {1, 33, 77, true});
  ModelInferResponse resp;
  ASSERT_TRUE(Infer(*stub, Request(c), &resp).ok());
  EXPECT_EQ(resp.raw_output_contents(0), Expected(c));
}

TEST_P(AttentionModelTest, MetadataAndConfigShowSequences) {
  DaemonProcess d(Args());
  auto stub = d.stub();
  grpc::ClientContext ctx;
  inference::ModelMetadataRequest req;
  req.set_name("attention");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(stub->ModelMetadata(&ctx, req, &meta).ok());
  ASSERT_EQ(meta.inputs_size(), 3);
  EXPECT_THAT(meta.inputs(0).shape(), ::testing::ElementsAre(-1, -1, 64));
  EXPECT_THAT(meta.outputs(0).shape(), ::testing::ElementsAre(-1, -1, 64));
  grpc::ClientContext ctx2;
  inference::ModelConfigRequest creq;
  creq.set_name("attention");
  inference::ModelConfigResponse config;
  ASSERT_TRUE(stub->ModelConfig(&ctx2, creq, &config).ok());
  EXPECT_TRUE(config.config().parameters().contains("causal"));
  EXPECT_THAT(config.config().parameters().at("kernels").string_value(),
              HasSubstr("attention_stream"));
}

INSTANTIATE_TEST_SUITE_P(Backends, AttentionModelTest,
                         ::testing::ValuesIn(Backends()), [](const auto& info) {
                           return npuk::testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace npuk
