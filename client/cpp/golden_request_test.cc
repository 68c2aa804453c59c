// Every registered kernel's golden vector, turned into a wire request, must
// carry exactly the golden device bytes: what `npukctl health --deep` sends
// is what the daemon's canaries replay.
#include "client/cpp/golden_request.h"

#include <span>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

// What ModelMetadata/ModelConfig say about a kernel, as the daemon builds
// them from the same declaration.
ModelInfo InfoOf(const KernelSpec& k) {
  ModelInfo info;
  info.name = k.name;
  for (const TensorDecl& t : k.inputs) {
    info.inputs.push_back({t.name, DTypeName(t.dtype), t.item_dims});
  }
  info.outputs.push_back(
      {k.output.name, DTypeName(k.output.dtype), k.output.item_dims});
  for (const ParamDecl& p : k.params)
    info.params.push_back({p.name, p.doc, ""});
  return info;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(GoldenRequestTest, EveryKernelsRequestCarriesTheGoldenDeviceBytes) {
  ASSERT_FALSE(AllKernels().empty());
  for (const KernelSpec* k : AllKernels()) {
    if (k->internal) continue;  // not a model on the wire (log_mel's)
    SCOPED_TRACE(k->name);
    auto g = GoldenRequestFor(*k);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->output, k->output.name);
    EXPECT_EQ(g->expected.size(), k->golden.items * k->output_bytes());
    EXPECT_EQ(g->params.size(), k->param_bytes > 0 ? k->params.size() : 0u);

    // The request a client builds from the metadata...
    auto req = BuildRequest(InfoOf(*k), g->inputs, g->params);
    ASSERT_TRUE(req.ok()) << req.status();
    EXPECT_EQ(req->inputs(0).shape(0), static_cast<int64_t>(k->golden.items));

    // ...gathered back into device arguments the way the daemon does, with
    // the parameters encoded from the values sent, is the golden input.
    std::vector<std::string> planes(req->raw_input_contents().begin(),
                                    req->raw_input_contents().end());
    if (k->param_bytes > 0) {
      std::vector<ParamValue> values = DefaultParams(*k);
      for (size_t i = 0; i < k->params.size(); ++i) {
        const auto& p = req->parameters().at(k->params[i].name);
        if (p.has_double_param()) values[i] = p.double_param();
        if (p.has_int64_param()) values[i] = p.int64_param();
        if (p.has_bool_param()) values[i] = p.bool_param();
      }
      std::string record(k->param_bytes, '\0');
      ASSERT_TRUE(k->encode_params(
                       values, std::span<uint8_t>(
                                   reinterpret_cast<uint8_t*>(record.data()),
                                   record.size()))
                      .ok());
      std::string plane;
      for (size_t i = 0; i < k->golden.items; ++i) plane += record;
      planes.push_back(plane);
    }
    std::vector<std::span<const uint8_t>> views;
    for (const std::string& p : planes) views.push_back(Bytes(p));
    for (size_t arg = 0; arg < k->device_args.size(); ++arg) {
      std::vector<uint8_t> device(k->golden.items * k->arg_bytes(arg));
      GatherArg(*k, arg, views, 0, k->golden.items, device.data());
      const std::span<const uint8_t> golden = k->golden.inputs[arg].bytes;
      EXPECT_TRUE(std::equal(device.begin(), device.end(), golden.begin(),
                             golden.end()))
          << "device argument " << arg;
    }

    Tensors answer{{g->output, {.data = g->expected}}};
    EXPECT_TRUE(CompareGolden(*g, answer).ok());
    answer[g->output].data[3] ^= 1;
    auto differs = CompareGolden(*g, answer);
    EXPECT_EQ(differs.code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(differs.message(), HasSubstr("differs at byte 3"));
  }
}

TEST(GoldenRequestTest, UndeclaredGoldenParametersAreRefused) {
  const KernelSpec* attention = FindKernel("attention");
  ASSERT_NE(attention, nullptr);
  ASSERT_FALSE(attention->golden.params.empty());
  // Its golden was made with a score scale other than the default: without
  // the declared value the request would not reproduce it.
  KernelSpec copy = *attention;
  copy.golden.params.clear();
  auto g = GoldenRequestFor(copy);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(g.status().message(), HasSubstr("golden.params"));

  copy.golden.items = 0;
  EXPECT_EQ(GoldenRequestFor(copy).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace npuk
