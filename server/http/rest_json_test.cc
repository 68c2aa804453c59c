#include "server/http/rest_json.h"

#include <cstdint>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk::rest {
namespace {

using ::testing::HasSubstr;

TEST(ParseInferRequest, JsonDataBecomesLittleEndianRawBytes) {
  const std::string body =
      R"({"id":"r1","parameters":{"score_scale":0.5,"timeout":100},
          "inputs":[{"name":"audio","datatype":"INT16","shape":[1,3],
                     "data":[[1,-2,300]]}],
          "outputs":[{"name":"log_mel","parameters":{"binary_data":true}}]})";
  inference::ModelInferRequest r;
  OutputFormat f;
  ASSERT_TRUE(ParseInferRequest(body, std::nullopt, "mel", "", &r, &f).ok());
  EXPECT_EQ(r.model_name(), "mel");
  EXPECT_EQ(r.id(), "r1");
  ASSERT_EQ(r.raw_input_contents_size(), 1);
  EXPECT_EQ(r.raw_input_contents(0),
            std::string("\x01\x00\xfe\xff\x2c\x01", 6));
  EXPECT_DOUBLE_EQ(r.parameters().at("score_scale").double_param(), 0.5);
  EXPECT_EQ(r.parameters().at("timeout").int64_param(), 100);
  ASSERT_EQ(r.outputs_size(), 1);
  EXPECT_TRUE(f.Binary("log_mel"));
}

TEST(ParseInferRequest, BinaryTailIsSplitByBinaryDataSize) {
  const std::string header =
      R"({"inputs":[{"name":"a","datatype":"INT8","shape":[2],
          "parameters":{"binary_data_size":2}},
          {"name":"b","datatype":"INT8","shape":[1],"data":[7]},
          {"name":"c","datatype":"INT8","shape":[3],
          "parameters":{"binary_data_size":3}}],
          "parameters":{"binary_data_output":true}})";
  const std::string body = header + "xyABC";
  inference::ModelInferRequest r;
  OutputFormat f;
  ASSERT_TRUE(ParseInferRequest(body, header.size(), "m", "1", &r, &f).ok());
  ASSERT_EQ(r.raw_input_contents_size(), 3);
  EXPECT_EQ(r.raw_input_contents(0), "xy");
  EXPECT_EQ(r.raw_input_contents(1), "\x07");
  EXPECT_EQ(r.raw_input_contents(2), "ABC");
  EXPECT_TRUE(f.binary_default);
  EXPECT_EQ(r.parameters_size(), 0);  // binary_data_output is consumed
}

absl::Status Parse(const std::string& body, std::optional<size_t> h) {
  inference::ModelInferRequest r;
  OutputFormat f;
  return ParseInferRequest(body, h, "m", "", &r, &f);
}

TEST(ParseInferRequest, ErrorsNameWhatIsWrong) {
  EXPECT_THAT(std::string(Parse("{\"inputs\": [", std::nullopt).message()),
              HasSubstr("not valid JSON (error at byte"));
  EXPECT_THAT(std::string(Parse("{}", 10).message()),
              HasSubstr("Inference-Header-Content-Length is 10 but the body "
                        "has only 2 bytes"));
  const std::string h =
      R"({"inputs":[{"name":"a","datatype":"INT8","shape":[4],"parameters":{"binary_data_size":4}}]})";
  EXPECT_THAT(std::string(Parse(h + "xy", h.size()).message()),
              HasSubstr("binary_data_size 4 but only 2 bytes"));
  EXPECT_THAT(std::string(Parse(h + "xyzw!", h.size()).message()),
              HasSubstr("1 bytes follow the JSON header"));
  EXPECT_THAT(
      std::string(
          Parse(
              R"({"inputs":[{"name":"a","datatype":"INT8","shape":[2],"data":[1,200]}]})",
              std::nullopt)
              .message()),
      HasSubstr("value 200 at index 1 is out of range for INT8"));
  EXPECT_THAT(
      std::string(
          Parse(
              R"({"inputs":[{"name":"a","datatype":"INT16","shape":[1,3],"data":[1,2]}]})",
              std::nullopt)
              .message()),
      HasSubstr("has 2 values in 'data'; shape [1,3] needs 3"));
  EXPECT_THAT(std::string(Parse(std::string(100, '[') + std::string(100, ']'),
                                std::nullopt)
                              .message()),
              HasSubstr("nests deeper than"));
  EXPECT_THAT(std::string(Parse("[]", std::nullopt).message()),
              HasSubstr("must be a JSON object"));
}

TEST(RenderInferResponse, BinaryAndJsonOutputs) {
  inference::ModelInferResponse resp;
  resp.set_model_name("m");
  resp.set_model_version("1");
  (*resp.mutable_parameters())["queue_us"].set_int64_param(5);
  auto* o = resp.add_outputs();
  o->set_name("out");
  o->set_datatype("INT8");
  o->add_shape(1);
  o->add_shape(3);
  resp.add_raw_output_contents(std::string("\x01\xff\x05", 3));

  OutputFormat json_format;
  std::string body;
  std::optional<size_t> header;
  RenderInferResponse(resp, json_format, &body, &header);
  EXPECT_FALSE(header.has_value());
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["outputs"][0]["data"], nlohmann::json({1, -1, 5}));
  EXPECT_EQ(j["parameters"]["queue_us"], 5);

  OutputFormat binary;
  binary.binary_default = true;
  RenderInferResponse(resp, binary, &body, &header);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(body.substr(*header), std::string("\x01\xff\x05", 3));
  j = nlohmann::json::parse(body.substr(0, *header));
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 3);
}

TEST(ToJson, SixtyFourBitIntegersAreNumbersAndMapsObjects) {
  inference::ModelStatistics s;
  s.set_name("mel");
  s.set_inference_count(uint64_t{1} << 40);
  auto j = ToJson(s);
  EXPECT_EQ(j["inference_count"], uint64_t{1} << 40);
  EXPECT_EQ(j["execution_count"], 0);
  EXPECT_FALSE(j.contains("inference_stats"));  // unset sub-message
  inference::ModelConfig c;
  (*c.mutable_parameters())["k"].set_string_value("v");
  EXPECT_EQ(ToJson(c)["parameters"]["k"]["string_value"], "v");
}

}  // namespace
}  // namespace npuk::rest
