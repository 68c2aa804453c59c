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

}  // namespace
}  // namespace npuk
