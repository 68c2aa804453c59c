// Requests built from hand-made ModelMetadata/ModelConfig, without a daemon:
// the generic path must work for a model the client was not written for.
#include "client/cpp/model_info.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

void AddTensor(google::protobuf::RepeatedPtrField<
                   inference::ModelMetadataResponse::TensorMetadata>* list,
               const std::string& name, const std::string& datatype,
               std::vector<int64_t> shape) {
  auto* t = list->Add();
  t->set_name(name);
  t->set_datatype(datatype);
  for (int64_t d : shape) t->add_shape(d);
}

// What the daemon says about passthrough: INT8 in [N, 4096] -> out [N, 4096].
ModelInfo Passthrough() {
  inference::ModelMetadataResponse meta;
  meta.set_name("passthrough");
  AddTensor(meta.mutable_inputs(), "in", "INT8", {-1, 4096});
  AddTensor(meta.mutable_outputs(), "out", "INT8", {-1, 4096});
  inference::ModelConfigResponse config;
  config.mutable_config()->set_max_batch_size(256);
  auto info = ModelInfo::From(meta, config);
  EXPECT_TRUE(info.ok()) << info.status();
  return *info;
}

// A made-up model with three inputs of two datatypes and parameters, so
// nothing here leans on one kernel's layout.
ModelInfo ThreeInputs() {
  inference::ModelMetadataResponse meta;
  meta.set_name("made_up");
  AddTensor(meta.mutable_inputs(), "a", "INT16", {-1, 3});
  AddTensor(meta.mutable_inputs(), "b", "INT8", {-1, 2, 2});
  AddTensor(meta.mutable_inputs(), "c", "FP32", {-1, 1});
  AddTensor(meta.mutable_outputs(), "y", "FP32", {-1, 5});
  inference::ModelConfigResponse config;
  auto& p = *config.mutable_config()->mutable_parameters();
  p["gain"].set_string_value("gain (double), default 1, in [0.5, 2]");
  p["steps"].set_string_value("request parameter (int64), default 4");
  p["causal"].set_string_value("bool, default false: mask future keys");
  p["note"].set_string_value("free text");
  auto info = ModelInfo::From(meta, config);
  EXPECT_TRUE(info.ok()) << info.status();
  return *info;
}

TEST(ModelInfoTest, ReadsTensorsLimitsAndParameterTypes) {
  const ModelInfo p = Passthrough();
  EXPECT_EQ(p.name, "passthrough");
  ASSERT_EQ(p.inputs.size(), 1u);
  EXPECT_EQ(p.inputs[0].name, "in");
  EXPECT_THAT(p.inputs[0].item_dims, ElementsAre(4096));
  EXPECT_EQ(p.inputs[0].item_bytes(), 4096u);
  EXPECT_EQ(p.max_items, 256);
  EXPECT_TRUE(p.params.empty());

  const ModelInfo m = ThreeInputs();
  EXPECT_EQ(m.inputs[0].item_bytes(), 6u);
  EXPECT_EQ(m.inputs[1].item_bytes(), 4u);
  EXPECT_EQ(m.inputs[2].item_bytes(), 4u);
  EXPECT_EQ(m.InputNames(), "a, b, c");
  ASSERT_EQ(m.params.size(), 4u);  // sorted by name
  EXPECT_EQ(m.params[0].name, "causal");
  EXPECT_EQ(m.params[0].type, "bool");
  EXPECT_EQ(m.FindParam("gain")->type, "double");
  EXPECT_EQ(m.FindParam("steps")->type, "int64");
  EXPECT_EQ(m.FindParam("note")->type, "");
}

TEST(ModelInfoTest, RefusesTensorsItCannotBuild) {
  inference::ModelMetadataResponse meta;
  meta.set_name("m");
  AddTensor(meta.mutable_inputs(), "x", "INT8", {4, 4});
  auto fixed_n = ModelInfo::From(meta, {});
  EXPECT_EQ(fixed_n.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fixed_n.status().message(), HasSubstr("[-1, ...]"));

  meta.clear_inputs();
  AddTensor(meta.mutable_inputs(), "s", "BYTES", {-1});
  auto bytes = ModelInfo::From(meta, {});
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bytes.status().message(), HasSubstr("BYTES"));
}

TEST(BuildRequestTest, ShapesComeFromMetadata) {
  const ModelInfo p = Passthrough();
  std::string bytes(2 * 4096, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i);
  auto req = BuildRequest(p, {{"in", {.data = bytes}}});
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->model_name(), "passthrough");
  ASSERT_EQ(req->inputs_size(), 1);
  EXPECT_EQ(req->inputs(0).name(), "in");
  EXPECT_EQ(req->inputs(0).datatype(), "INT8");
  EXPECT_THAT(req->inputs(0).shape(), ElementsAre(2, 4096));
  ASSERT_EQ(req->raw_input_contents_size(), 1);
  EXPECT_EQ(req->raw_input_contents(0), bytes);
  EXPECT_TRUE(req->parameters().empty());
}

TEST(BuildRequestTest, InputsGoInMetadataOrderWithParameters) {
  const ModelInfo m = ThreeInputs();
  Parameters params;
  params["gain"].set_double_param(1.5);
  // Given out of order, and with an explicit shape for one of them.
  auto req =
      BuildRequest(m,
                   {{"c", {.data = std::string(8, 'c')}},
                    {"b", {.shape = {2, 2, 2}, .data = std::string(8, 'b')}},
                    {"a", {.datatype = "INT16", .data = std::string(12, 'a')}}},
                   params);
  ASSERT_TRUE(req.ok()) << req.status();
  ASSERT_EQ(req->inputs_size(), 3);
  EXPECT_EQ(req->inputs(0).name(), "a");
  EXPECT_THAT(req->inputs(0).shape(), ElementsAre(2, 3));
  EXPECT_EQ(req->inputs(1).name(), "b");
  EXPECT_THAT(req->inputs(1).shape(), ElementsAre(2, 2, 2));
  EXPECT_EQ(req->inputs(2).name(), "c");
  EXPECT_EQ(req->inputs(2).datatype(), "FP32");
  EXPECT_EQ(req->raw_input_contents(2), std::string(8, 'c'));
  EXPECT_DOUBLE_EQ(req->parameters().at("gain").double_param(), 1.5);
}

TEST(BuildRequestTest, EachMistakeIsNamed) {
  const ModelInfo m = ThreeInputs();
  const Tensor a{.data = std::string(6, 0)}, b{.data = std::string(4, 0)},
      c{.data = std::string(4, 0)};
  struct Case {
    Tensors inputs;
    const char* says;
  } cases[] = {
      {{{"a", a}, {"b", b}}, "'c' is missing"},
      {{{"a", a}, {"b", b}, {"c", c}, {"d", c}}, "no input 'd'"},
      {{{"a", {.data = std::string(7, 0)}}, {"b", b}, {"c", c}},
       "whole items of 6 bytes"},
      {{{"a", a}, {"b", {.data = std::string(8, 0)}}, {"c", c}}, "the same N"},
      {{{"a", {.datatype = "INT8", .data = a.data}}, {"b", b}, {"c", c}},
       "takes INT16"},
      {{{"a", a}, {"b", {.shape = {1, 4}, .data = b.data}}, {"c", c}},
       "takes [N,2,2]"},
      {{{"a", a}, {"b", {.shape = {2, 2, 2}, .data = b.data}}, {"c", c}},
       "4 bytes of data"},
      {{{"a", {.data = ""}}, {"b", b}, {"c", c}}, "has 0 bytes"},
  };
  for (const Case& k : cases) {
    auto req = BuildRequest(m, k.inputs);
    EXPECT_EQ(req.status().code(), absl::StatusCode::kInvalidArgument)
        << k.says;
    EXPECT_THAT(req.status().message(), HasSubstr(k.says));
  }
}

TEST(BuildRequestTest, VariableItemDimsNeedAShape) {
  inference::ModelMetadataResponse meta;
  meta.set_name("seq");
  AddTensor(meta.mutable_inputs(), "q", "INT8", {-1, -1, 4});
  auto info = ModelInfo::From(meta, {});
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->inputs[0].fixed());
  auto bare = BuildRequest(*info, {{"q", {.data = std::string(24, 0)}}});
  EXPECT_THAT(bare.status().message(), HasSubstr("give its shape"));
  auto shaped = BuildRequest(
      *info, {{"q", {.shape = {2, 3, 4}, .data = std::string(24, 0)}}});
  ASSERT_TRUE(shaped.ok()) << shaped.status();
  EXPECT_THAT(shaped->inputs(0).shape(), ElementsAre(2, 3, 4));
  EXPECT_EQ(RandomInputs(*info, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // With a length for the variable dims: whole shapes, bytes to match.
  auto random = RandomInputs(*info, 2, 7, 5);
  ASSERT_TRUE(random.ok()) << random.status();
  const Tensor& q = random->at("q");
  EXPECT_EQ(q.data.size(),
            static_cast<size_t>(q.shape[0] * q.shape[1] * q.shape[2] * 1) *
                DatatypeBytes(info->inputs[0].datatype));
  EXPECT_EQ(q.shape[0], 2);
  auto sent = BuildRequest(*info, *random);
  ASSERT_TRUE(sent.ok()) << sent.status();
}

TEST(RandomInputsTest, DeterministicWholeItemsInHalfTheRange) {
  const ModelInfo m = ThreeInputs();
  auto x = RandomInputs(m, 5);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->at("a").data.size(), 5 * 6u);
  EXPECT_EQ(x->at("b").data.size(), 5 * 4u);
  EXPECT_EQ(x->at("c").data.size(), 5 * 4u);
  for (char v : x->at("b").data) {
    EXPECT_GE(static_cast<int8_t>(v), -64);
    EXPECT_LE(static_cast<int8_t>(v), 63);
  }
  for (size_t i = 0; i < 5; ++i) {
    float f;
    std::memcpy(&f, x->at("c").data.data() + 4 * i, 4);
    EXPECT_GE(f, -1.0f);
    EXPECT_LT(f, 1.0f);
  }
  EXPECT_EQ(RandomInputs(m, 5)->at("a").data, x->at("a").data);
  EXPECT_NE(RandomInputs(m, 5, 8)->at("a").data, x->at("a").data);
  // What it makes is a valid request.
  auto req = BuildRequest(m, *x);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ(req->inputs(0).shape(0), 5);
  EXPECT_EQ(RandomInputs(m, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SplitConcatenatedInputsTest, OneFileHoldsTheInputsInOrder) {
  const ModelInfo m = ThreeInputs();
  // 2 items: a = 12 bytes, then b = 8, then c = 8.
  const std::string file =
      std::string(12, 'a') + std::string(8, 'b') + std::string(8, 'c');
  auto x = SplitConcatenatedInputs(m, file);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->at("a").data, std::string(12, 'a'));
  EXPECT_EQ(x->at("b").data, std::string(8, 'b'));
  EXPECT_EQ(x->at("c").data, std::string(8, 'c'));

  auto bad = SplitConcatenatedInputs(m, std::string(27, 0));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("14 bytes"));
  EXPECT_THAT(bad.status().message(), HasSubstr("--input=NAME=FILE"));

  auto one = SplitConcatenatedInputs(Passthrough(), std::string(8192, 1));
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->at("in").data.size(), 8192u);
}

TEST(ParseParameterTest, DeclaredTypeWinsElseTheValueDecides) {
  const ModelInfo m = ThreeInputs();
  auto gain = ParseParameter(m, "gain=1");
  ASSERT_TRUE(gain.ok()) << gain.status();
  EXPECT_EQ(gain->first, "gain");
  EXPECT_EQ(gain->second.parameter_choice_case(),
            inference::InferParameter::kDoubleParam);
  EXPECT_DOUBLE_EQ(gain->second.double_param(), 1.0);
  EXPECT_EQ(ParseParameter(m, "steps=7")->second.int64_param(), 7);
  EXPECT_TRUE(ParseParameter(m, "causal=true")->second.bool_param());
  EXPECT_EQ(ParseParameter(m, "note=12")->second.int64_param(), 12);

  // Undeclared (Triton's reserved "timeout", or a typo the daemon names).
  EXPECT_EQ(ParseParameter(m, "timeout=500")->second.int64_param(), 500);
  EXPECT_DOUBLE_EQ(ParseParameter(m, "x=0.25")->second.double_param(), 0.25);
  EXPECT_FALSE(ParseParameter(m, "x=false")->second.bool_param());
  EXPECT_EQ(ParseParameter(m, "x=abc")->second.string_param(), "abc");

  auto bad = ParseParameter(m, "gain=loud");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("a double"));
  EXPECT_THAT(bad.status().message(), HasSubstr("in [0.5, 2]"));
  auto no_eq = ParseParameter(m, "gain");
  EXPECT_THAT(no_eq.status().message(), HasSubstr("NAME=VALUE"));
  EXPECT_THAT(no_eq.status().message(), HasSubstr("causal, gain, note, steps"));
}

TEST(OutputsOfTest, ChecksEveryOutputsSize) {
  inference::ModelInferResponse r;
  r.set_model_name("passthrough");
  auto* o = r.add_outputs();
  o->set_name("out");
  o->set_datatype("INT8");
  o->add_shape(2);
  o->add_shape(4096);
  r.add_raw_output_contents(std::string(8192, 3));
  auto out = OutputsOf(r);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->at("out").datatype, "INT8");
  EXPECT_THAT(out->at("out").shape, ElementsAre(2, 4096));
  EXPECT_EQ(out->at("out").data.size(), 8192u);

  r.mutable_raw_output_contents(0)->resize(100);
  auto truncated = OutputsOf(r);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(truncated.status().message(), HasSubstr("expected 8192"));

  r.clear_raw_output_contents();
  EXPECT_EQ(OutputsOf(r).status().code(), absl::StatusCode::kInternal);
}

TEST(PreviewValuesTest, ReadsTheDatatype) {
  EXPECT_EQ(PreviewValues({"INT8", {3}, std::string("\x01\xff\x7f", 3)}),
            "1 -1 127");
  std::string fp(8, 0);
  const float f[2] = {0.5f, -2.0f};
  std::memcpy(fp.data(), f, 8);
  EXPECT_EQ(PreviewValues({"FP32", {2}, fp}), "0.5 -2");
  EXPECT_EQ(PreviewValues({"INT8", {20}, std::string(20, 0)}, 2), "0 0 ...");
  const uint16_t half_one = 0x3c00;  // 1.0 in FP16
  EXPECT_EQ(
      PreviewValues({"FP16",
                     {1},
                     std::string(reinterpret_cast<const char*>(&half_one), 2)}),
      "1");
}

}  // namespace
}  // namespace npuk
