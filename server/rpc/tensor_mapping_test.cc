#include "server/rpc/tensor_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/common/score_scale.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

using inference::ModelInferRequest;
using ::testing::HasSubstr;

ModelInferRequest MelRequest(int64_t n) {
  ModelInferRequest r;
  r.set_model_name("mel");
  auto* in = r.add_inputs();
  in->set_name("audio");
  in->set_datatype("INT16");
  in->add_shape(n);
  in->add_shape(400);
  r.add_raw_input_contents(std::string(static_cast<size_t>(n) * 800, '\1'));
  return r;
}

ModelInferRequest AttentionRequest(int64_t n) {
  ModelInferRequest r;
  r.set_model_name("attention");
  for (const char* name : {"q", "k", "v"}) {
    auto* in = r.add_inputs();
    in->set_name(name);
    in->set_datatype("INT8");
    in->add_shape(n);
    in->add_shape(64);
    in->add_shape(64);
    r.add_raw_input_contents(
        std::string(static_cast<size_t>(n) * 4096, name[0]));
  }
  return r;
}

const KernelSpec& Mel() { return *FindKernel("mel"); }
const KernelSpec& Attention() { return *FindKernel("attention"); }
const KernelSpec& Passthrough() { return *FindKernel("passthrough"); }

// Attention's parameter record for `score_scale`, as its encoder writes it.
std::vector<uint8_t> ScaleRecord(double score_scale) {
  std::vector<uint8_t> record(Attention().param_bytes);
  const ParamValue value = score_scale;
  EXPECT_TRUE(Attention().encode_params({&value, 1}, record).ok());
  return record;
}

// The error of mapping `r`, which must fail.
absl::Status Error(const KernelSpec& spec, const ModelInferRequest& r,
                   size_t max = 16) {
  absl::StatusOr<MappedRequest> m = MapRequest(spec, r, max);
  EXPECT_FALSE(m.ok());
  return m.ok() ? absl::OkStatus() : m.status();
}

TEST(TensorMappingTest, MapsAValidMelRequest) {
  ModelInferRequest r = MelRequest(3);
  absl::StatusOr<MappedRequest> m = MapRequest(Mel(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->items, 3u);
  ASSERT_EQ(m->planes.size(), 1u);
  EXPECT_EQ(m->planes[0].size(), 2400u);
  EXPECT_EQ(m->planes[0].data(),
            reinterpret_cast<const uint8_t*>(r.raw_input_contents(0).data()));
}

TEST(TensorMappingTest, AttentionPlanesFollowSpecOrderWhateverTheRequestOrder) {
  ModelInferRequest r = AttentionRequest(2);
  r.mutable_inputs()->SwapElements(0, 2);  // v, k, q
  r.mutable_raw_input_contents()->SwapElements(0, 2);
  (*r.mutable_parameters())["score_scale"].set_double_param(0.25);
  absl::StatusOr<MappedRequest> m = MapRequest(Attention(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  // q, k, v, then the parameter plane.
  ASSERT_EQ(m->planes.size(), 4u);
  EXPECT_EQ(m->planes[0][0], 'q');
  EXPECT_EQ(m->planes[1][0], 'k');
  EXPECT_EQ(m->planes[2][0], 'v');
  ASSERT_EQ(m->params.size(), 1u);
  EXPECT_DOUBLE_EQ(std::get<double>(m->params[0]), 0.25);
}

TEST(TensorMappingTest, TheParameterPlaneRepeatsTheEncodedRecordPerItem) {
  ModelInferRequest r = AttentionRequest(3);
  (*r.mutable_parameters())["score_scale"].set_double_param(0.25);
  absl::StatusOr<MappedRequest> m = MapRequest(Attention(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  // The record is QuantizeScoreScale's {int32 multiplier, int32 shift}.
  const ScoreScale expected = QuantizeScoreScale(0.25);
  std::vector<uint8_t> record(8);
  std::memcpy(&record[0], &expected.multiplier, 4);
  std::memcpy(&record[4], &expected.shift, 4);
  EXPECT_EQ(ScaleRecord(0.25), record);
  std::vector<uint8_t> want;
  for (int i = 0; i < 3; ++i)
    want.insert(want.end(), record.begin(), record.end());
  ASSERT_EQ(m->planes.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(m->planes[3].begin(), m->planes[3].end()),
            want);
  EXPECT_EQ(m->planes[3].data(), m->params_plane.data());
  // Moving the result keeps the plane pointing at its (moved) buffer.
  MappedRequest moved = *std::move(m);
  EXPECT_EQ(moved.planes[3].data(), moved.params_plane.data());
}

TEST(TensorMappingTest, DefaultScoreScaleIsAnEighth) {
  ModelInferRequest r = AttentionRequest(1);
  absl::StatusOr<MappedRequest> m = MapRequest(Attention(), r, 16);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(std::get<double>(m->params[0]), 0.125);
  EXPECT_EQ(std::vector<uint8_t>(m->planes[3].begin(), m->planes[3].end()),
            ScaleRecord(0.125));
}

TEST(TensorMappingTest, AnIntegerScoreScaleIsANumber) {
  ModelInferRequest r = AttentionRequest(1);
  (*r.mutable_parameters())["score_scale"].set_int64_param(1);
  absl::StatusOr<MappedRequest> m = MapRequest(Attention(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(std::get<double>(m->params[0]), 1.0);
}

TEST(TensorMappingTest, UnknownParameterListsTheModelsParameters) {
  ModelInferRequest r = AttentionRequest(1);
  (*r.mutable_parameters())["scale"].set_double_param(1);
  EXPECT_THAT(std::string(Error(Attention(), r).message()),
              HasSubstr("has no parameter 'scale' (it takes: score_scale)"));
}

TEST(TensorMappingTest, PassthroughHasOnePlaneAndNoParameters) {
  ModelInferRequest r;
  r.set_model_name("passthrough");
  auto* in = r.add_inputs();
  in->set_name("in");
  in->set_datatype("INT8");
  in->add_shape(2);
  in->add_shape(4096);
  r.add_raw_input_contents(std::string(2 * 4096, '\7'));
  absl::StatusOr<MappedRequest> m = MapRequest(Passthrough(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->items, 2u);
  ASSERT_EQ(m->planes.size(), 1u);
  EXPECT_TRUE(m->params_plane.empty());
  in->mutable_shape()->RemoveLast();  // [2]: N alone
  EXPECT_THAT(std::string(Error(Passthrough(), r).message()),
              HasSubstr("[N,4096] with N the number of blocks"));
}

TEST(TensorMappingTest, TypedIntContentsAreConverted) {
  ModelInferRequest r = MelRequest(1);
  r.clear_raw_input_contents();
  for (int i = 0; i < 400; ++i) {
    r.mutable_inputs(0)->mutable_contents()->add_int_contents(i - 200);
  }
  absl::StatusOr<MappedRequest> m = MapRequest(Mel(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  int16_t first;
  std::memcpy(&first, m->planes[0].data(), 2);
  EXPECT_EQ(first, -200);
}

struct BadCase {
  const char* name;
  std::function<void(ModelInferRequest&)> mutate;
  absl::StatusCode code;
  const char* message;
};

class BadMelRequestTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadMelRequestTest, IsRefusedWithAMessageNamingTheProblem) {
  ModelInferRequest r = MelRequest(2);
  GetParam().mutate(r);
  absl::Status s = Error(Mel(), r);
  EXPECT_EQ(s.code(), GetParam().code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadMelRequestTest,
    ::testing::Values(
        BadCase{"WrongDtype",
                [](auto& r) { r.mutable_inputs(0)->set_datatype("FP32"); },
                absl::StatusCode::kInvalidArgument, "needs INT16"},
        BadCase{
            "WrongRank",
            [](auto& r) { r.mutable_inputs(0)->mutable_shape()->RemoveLast(); },
            absl::StatusCode::kInvalidArgument, "[N,400]"},
        BadCase{"WrongItemDim",
                [](auto& r) { r.mutable_inputs(0)->set_shape(1, 512); },
                absl::StatusCode::kInvalidArgument, "[N,400]"},
        BadCase{"NegativeN",
                [](auto& r) { r.mutable_inputs(0)->set_shape(0, -1); },
                absl::StatusCode::kInvalidArgument, "N = -1"},
        BadCase{"ZeroN", [](auto& r) { r.mutable_inputs(0)->set_shape(0, 0); },
                absl::StatusCode::kInvalidArgument, "N = 0"},
        BadCase{"OverflowingN",
                [](auto& r) {
                  r.mutable_inputs(0)->set_shape(0, int64_t{1} << 62);
                },
                absl::StatusCode::kInvalidArgument, "1 to 16"},
        BadCase{"NOverMaximum",
                [](auto& r) { r.mutable_inputs(0)->set_shape(0, 17); },
                absl::StatusCode::kInvalidArgument, "max_batch_frames"},
        BadCase{"ShortRawBytes",
                [](auto& r) { r.mutable_raw_input_contents(0)->pop_back(); },
                absl::StatusCode::kInvalidArgument, "1599 bytes"},
        BadCase{"UnknownTensor",
                [](auto& r) { r.mutable_inputs(0)->set_name("pcm"); },
                absl::StatusCode::kInvalidArgument, "no input 'pcm'"},
        BadCase{"MissingTensor",
                [](auto& r) {
                  r.clear_inputs();
                  r.clear_raw_input_contents();
                },
                absl::StatusCode::kInvalidArgument, "takes 1 input"},
        BadCase{"DuplicateTensor",
                [](auto& r) {
                  *r.add_inputs() = r.inputs(0);
                  r.add_raw_input_contents(r.raw_input_contents(0));
                },
                absl::StatusCode::kInvalidArgument, "takes 1 input"},
        BadCase{"RawAndTypedMixed",
                [](auto& r) {
                  r.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
                },
                absl::StatusCode::kInvalidArgument, "one or the other"},
        BadCase{"NoData", [](auto& r) { r.clear_raw_input_contents(); },
                absl::StatusCode::kInvalidArgument, "has no data"},
        BadCase{"TypedWrongField",
                [](auto& r) {
                  r.clear_raw_input_contents();
                  r.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1);
                },
                absl::StatusCode::kInvalidArgument, "int_contents"},
        BadCase{"TypedOutOfRange",
                [](auto& r) {
                  r.clear_raw_input_contents();
                  for (int i = 0; i < 800; ++i) {
                    r.mutable_inputs(0)->mutable_contents()->add_int_contents(
                        i == 5 ? 40000 : 0);
                  }
                },
                absl::StatusCode::kInvalidArgument, "out of range"},
        BadCase{"ExtraRawEntry", [](auto& r) { r.add_raw_input_contents("x"); },
                absl::StatusCode::kInvalidArgument, "one entry per input"},
        BadCase{"UnknownParameter",
                [](auto& r) {
                  (*r.mutable_parameters())["score_scale"].set_double_param(1);
                },
                absl::StatusCode::kInvalidArgument, "takes none"},
        BadCase{"BadTimeout",
                [](auto& r) {
                  (*r.mutable_parameters())["timeout"].set_string_param("1s");
                },
                absl::StatusCode::kInvalidArgument, "microseconds"},
        BadCase{"UnknownOutput",
                [](auto& r) { r.add_outputs()->set_name("mel"); },
                absl::StatusCode::kInvalidArgument, "no output 'mel'"},
        BadCase{"UnknownVersion", [](auto& r) { r.set_model_version("7"); },
                absl::StatusCode::kNotFound, "no version '7'"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(TensorMappingTest, AttentionScoreScaleOutOfRangeOrWrongType) {
  for (double bad : {0.0, -1.0, 1e9, std::nan(""), 1e-30}) {
    ModelInferRequest r = AttentionRequest(1);
    (*r.mutable_parameters())["score_scale"].set_double_param(bad);
    absl::Status s = Error(Attention(), r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("score_scale"));
  }
  ModelInferRequest r = AttentionRequest(1);
  (*r.mutable_parameters())["score_scale"].set_string_param("0.1");
  EXPECT_THAT(std::string(Error(Attention(), r).message()),
              HasSubstr("must be a number"));
}

TEST(TensorMappingTest, AttentionInputsMustShareN) {
  ModelInferRequest r = AttentionRequest(2);
  r.mutable_inputs(1)->set_shape(0, 1);
  r.mutable_raw_input_contents(1)->resize(4096);
  EXPECT_THAT(std::string(Error(Attention(), r).message()),
              HasSubstr("same N"));
}

TEST(TensorMappingTest, TritonReservedParametersAreAccepted) {
  ModelInferRequest r = MelRequest(1);
  (*r.mutable_parameters())["priority"].set_int64_param(1);
  (*r.mutable_parameters())["timeout"].set_int64_param(5000);
  absl::StatusOr<MappedRequest> m = MapRequest(Mel(), r, 16);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m->queue_timeout, absl::Milliseconds(5));
}

TEST(TensorMappingTest, PrepareResponseShapesTheOutput) {
  ModelInferRequest r = MelRequest(3);
  r.set_id("req-7");
  inference::ModelInferResponse resp;
  uint8_t* out = PrepareResponse(Mel(), r, 3, &resp);
  EXPECT_EQ(resp.model_name(), "mel");
  EXPECT_EQ(resp.id(), "req-7");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "log_mel");
  EXPECT_EQ(resp.outputs(0).datatype(), "INT8");
  EXPECT_THAT(resp.outputs(0).shape(), ::testing::ElementsAre(3, 80));
  EXPECT_EQ(resp.raw_output_contents(0).size(), 240u);
  EXPECT_EQ(out, reinterpret_cast<const uint8_t*>(
                     resp.raw_output_contents(0).data()));
}

// System shared memory (Triton's extension): a POSIX object registered as
// region "r", inputs and outputs named by region, offset and byte size.
class SharedMemoryMapping : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = "/npuk_tm_test_" + std::to_string(getpid());
    const int fd = shm_open(key_.c_str(), O_CREAT | O_RDWR, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, kSize), 0);
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    ASSERT_NE(p, MAP_FAILED);
    mem_ = static_cast<uint8_t*>(p);
    ASSERT_TRUE(registry_.Register("r", key_, 0, kSize).ok());
  }
  void TearDown() override {
    munmap(mem_, kSize);
    shm_unlink(key_.c_str());
  }
  static void InRegion(ModelInferRequest::InferInputTensor* t, int64_t offset,
                       int64_t size, const std::string& region = "r") {
    auto& p = *t->mutable_parameters();
    p["shared_memory_region"].set_string_param(region);
    p["shared_memory_offset"].set_int64_param(offset);
    p["shared_memory_byte_size"].set_int64_param(size);
  }
  absl::Status ErrorWith(const KernelSpec& spec, const ModelInferRequest& r) {
    absl::StatusOr<MappedRequest> m = MapRequest(spec, r, 16, &registry_);
    EXPECT_FALSE(m.ok());
    return m.ok() ? absl::OkStatus() : m.status();
  }

  static constexpr size_t kSize = 64 * 1024;
  std::string key_;
  uint8_t* mem_ = nullptr;
  shm::SharedMemoryRegistry registry_;
};

TEST_F(SharedMemoryMapping, InputsComeFromTheRegionAndMixWithRaw) {
  ModelInferRequest r = AttentionRequest(2);
  // k from the region at offset 100; q and v stay raw (2 entries).
  std::memset(mem_ + 100, 'K', 2 * 4096);
  InRegion(r.mutable_inputs(1), 100, 2 * 4096);
  r.mutable_raw_input_contents()->DeleteSubrange(1, 1);
  auto m = MapRequest(Attention(), r, 16, &registry_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->planes[0][0], 'q');
  EXPECT_EQ(m->planes[1][0], 'K');
  EXPECT_EQ(m->planes[1][2 * 4096 - 1], 'K');
  EXPECT_EQ(m->planes[2][0], 'v');
  // The bytes were copied: rewriting the region does not change them.
  std::memset(mem_ + 100, 0, 2 * 4096);
  EXPECT_EQ(m->planes[1][0], 'K');
}

TEST_F(SharedMemoryMapping, OutputGoesToTheRegion) {
  ModelInferRequest r = MelRequest(2);
  auto* o = r.add_outputs();
  o->set_name("log_mel");
  auto& p = *o->mutable_parameters();
  p["shared_memory_region"].set_string_param("r");
  p["shared_memory_offset"].set_int64_param(1000);
  p["shared_memory_byte_size"].set_int64_param(500);
  auto m = MapRequest(Mel(), r, 16, &registry_);
  ASSERT_TRUE(m.ok()) << m.status();
  inference::ModelInferResponse resp;
  uint8_t* out = PrepareResponse(Mel(), r, 2, &resp, &*m);
  EXPECT_EQ(resp.raw_output_contents_size(), 0);
  EXPECT_EQ(
      resp.outputs(0).parameters().at("shared_memory_byte_size").int64_param(),
      160);
  std::memset(out, 7, 160);
  ASSERT_TRUE(WriteSharedMemoryOutput(Mel(), *m).ok());
  EXPECT_EQ(mem_[1000], 7);
  EXPECT_EQ(mem_[1159], 7);
  EXPECT_EQ(mem_[1160], 0);
}

TEST_F(SharedMemoryMapping, EveryBoundIsChecked) {
  auto with = [&](int64_t offset, int64_t size, const std::string& region) {
    ModelInferRequest r = MelRequest(2);
    r.clear_raw_input_contents();
    InRegion(r.mutable_inputs(0), offset, size, region);
    return ErrorWith(Mel(), r);
  };
  EXPECT_THAT(with(0, 1600, "nope").message(), HasSubstr("not registered"));
  EXPECT_THAT(with(kSize - 100, 1600, "r").message(),
              HasSubstr("past the end"));
  EXPECT_THAT(with(INT64_MAX, 1600, "r").message(), HasSubstr("past the end"));
  EXPECT_THAT(with(-1, 1600, "r").message(), HasSubstr("non-negative"));
  EXPECT_THAT(with(0, 1599, "r").message(), HasSubstr("is 1600 bytes"));
  // Raw entries for inputs in shared memory.
  ModelInferRequest extra = MelRequest(2);
  InRegion(extra.mutable_inputs(0), 0, 1600);
  EXPECT_THAT(ErrorWith(Mel(), extra).message(),
              HasSubstr("not in shared memory"));
  // An output range too small for the output.
  ModelInferRequest small = MelRequest(2);
  auto& p = *small.add_outputs()->mutable_parameters();
  small.mutable_outputs(0)->set_name("log_mel");
  p["shared_memory_region"].set_string_param("r");
  p["shared_memory_byte_size"].set_int64_param(159);
  EXPECT_THAT(ErrorWith(Mel(), small).message(), HasSubstr("need 160 bytes"));
}

TEST(SharedMemoryMappingWithoutRegistry, SaysSharedMemoryIsNotServed) {
  ModelInferRequest r = MelRequest(1);
  auto& p = *r.mutable_inputs(0)->mutable_parameters();
  p["shared_memory_region"].set_string_param("r");
  absl::StatusOr<MappedRequest> m = MapRequest(Mel(), r, 16);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("does not serve"));
  EXPECT_THAT(m.status().message(), HasSubstr("shared memory"));
}

}  // namespace
}  // namespace npuk
