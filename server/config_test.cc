#include "server/config.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace npuk {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& text) {
  std::string path = ::testing::TempDir() + "/npukd_config_test.conf";
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsFillEveryModel) {
  config::Config c;
  ASSERT_TRUE(FinalizeConfig(c).ok());
  EXPECT_EQ(c.backend(), "cpu");
  EXPECT_THAT(c.listen(), ::testing::StartsWith("unix:/"));
  const config::ModelSettings* mel = FindModelSettings(c, "mel");
  ASSERT_NE(mel, nullptr);
  EXPECT_GE(mel->max_batch_frames(), 3000u);  // a 30 s Whisper window
  EXPECT_EQ(mel->instances(), 1u);
  ASSERT_NE(FindModelSettings(c, "attention"), nullptr);
  EXPECT_EQ(c.socket_mode(), 0660u);
}

TEST(ConfigTest, ParsesTextFormatAndKeepsExplicitValues) {
  const std::string path = WriteTemp(R"(
    backend: "npu-sim"
    listen: "127.0.0.1:0"
    models { name: "mel" max_batch_frames: 64 max_queue_delay_us: 200 }
    models { name: "attention" enabled: false }
  )");
  absl::StatusOr<config::Config> c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(FinalizeConfig(*c).ok());
  EXPECT_EQ(FindModelSettings(*c, "mel")->max_batch_frames(), 64u);
  EXPECT_EQ(FindModelSettings(*c, "mel")->instances(), 2u);
  EXPECT_EQ(FindModelSettings(*c, "attention"), nullptr);
}

TEST(ConfigTest, SyntaxErrorsNameFileLineAndColumn) {
  const std::string path =
      WriteTemp("backend: \"cpu\"\nmodels { nam: \"x\" }\n");
  absl::StatusOr<config::Config> c = LoadConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr(path + ":2:"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("nam"));
}

TEST(ConfigTest, RejectsUnknownModelsAndBadValues) {
  config::Config c;
  c.add_models()->set_name("whisper");
  EXPECT_THAT(std::string(FinalizeConfig(c).message()),
              HasSubstr("unknown model 'whisper'"));
  config::Config d;
  auto* m = d.add_models();
  m->set_name("mel");
  m->set_max_batch_frames(1 << 20);
  EXPECT_THAT(std::string(FinalizeConfig(d).message()),
              HasSubstr("max_batch_frames"));
  config::Config e;
  e.mutable_tls()->set_cert_file("/x.pem");
  EXPECT_THAT(std::string(FinalizeConfig(e).message()), HasSubstr("key"));
}

TEST(ConfigTest, MissingFileSaysWhatToDo) {
  absl::StatusOr<config::Config> c = LoadConfigFile("/nonexistent/npukd.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("--config"));
}

TEST(ConfigTest, DefaultSocketFollowsTheEnvironment) {
  ::setenv("NPUK_SOCKET", "/tmp/x/npukd.sock", 1);
  EXPECT_EQ(DefaultSocketPath(), "/tmp/x/npukd.sock");
  ::unsetenv("NPUK_SOCKET");
  ::setenv("RUNTIME_DIRECTORY", "/run/npukd", 1);
  EXPECT_EQ(DefaultSocketPath(), "/run/npukd/npukd.sock");
  ::unsetenv("RUNTIME_DIRECTORY");
}

// FinalizeConfig's message for `c`, "" when it accepts it.
std::string Refusal(config::Config c) {
  return std::string(FinalizeConfig(c).message());
}

TEST(ConfigTest, ListenPortsAreInRange) {
  config::Config c;
  c.set_listen("127.0.0.1:70000");
  EXPECT_THAT(Refusal(c), HasSubstr("allowed 0 to 65535"));
  c.set_listen("127.0.0.1:-1");
  EXPECT_THAT(Refusal(c), HasSubstr("allowed 0 to 65535"));
  c.set_listen("127.0.0.1:80x");
  EXPECT_THAT(Refusal(c), HasSubstr("port '80x'"));
  c.set_listen("localhost");
  EXPECT_THAT(Refusal(c), HasSubstr("is not an address"));
  c.set_listen("unix:relative.sock");
  EXPECT_THAT(Refusal(c), HasSubstr("must be absolute"));
  c.set_listen("127.0.0.1:65535");
  EXPECT_EQ(Refusal(c), "");
  c.set_listen("[::1]:0");
  EXPECT_EQ(Refusal(c), "");
  c.set_metrics_listen("0.0.0.0:99999");
  EXPECT_THAT(Refusal(c), HasSubstr("metrics_listen"));
}

TEST(ConfigTest, ErrorsQuoteABoundedPrefixOfTheValue) {
  config::Config c;
  c.set_listen(std::string(10000, 'x') + ":99999");
  const std::string message = Refusal(c);
  EXPECT_THAT(message, HasSubstr("allowed 0 to 65535"));
  EXPECT_LT(message.size(), 300u);
}

TEST(ConfigTest, MessageSizeFitsGrpcsInt) {
  config::Config c;
  c.set_max_message_bytes(3000000000u);
  EXPECT_THAT(Refusal(c), HasSubstr("allowed 4096 bytes to 2147483647 bytes"));
  c.set_max_message_bytes(100);
  EXPECT_THAT(Refusal(c), HasSubstr("max_message_bytes"));
  c.set_max_message_bytes(2147483647u);
  EXPECT_EQ(Refusal(c), "");
}

TEST(ConfigTest, ThreadsDurationsAndQueuesHaveRanges) {
  config::Config c;
  c.set_cpu_threads(1000000);
  EXPECT_THAT(Refusal(c), HasSubstr("cpu_threads (0 = one per core) is "
                                    "1000000; allowed 1 to 1024"));
  c.set_cpu_threads(8);
  EXPECT_EQ(Refusal(c), "");
  c.set_drain_timeout_ms(4000000000u);
  EXPECT_THAT(Refusal(c), HasSubstr("drain_timeout_ms is 4000000000 ms"));
  c.set_drain_timeout_ms(2000);
  c.set_health_interval_ms(3600001);
  EXPECT_THAT(Refusal(c), HasSubstr("health_interval_ms"));
  c.set_health_interval_ms(500);
  auto* m = c.add_models();
  m->set_name("mel");
  m->set_max_queue_size(4294967295u);
  EXPECT_THAT(Refusal(c), HasSubstr("max_queue_size for 'mel'"));
}

}  // namespace
}  // namespace npuk
