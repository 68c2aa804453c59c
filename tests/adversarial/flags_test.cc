// Careless operators (issue 13 item 9): flags and config values outside
// their real ranges are refused at start-up with exit code 2 and a message
// naming the value and the allowed range, whatever --log_level says.
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/adversarial/harness.h"

namespace npuk::testing {
namespace {

using ::testing::HasSubstr;

struct Case {
  std::string name;
  std::vector<std::string> args;
  std::string expected;  // in the output
};

class FlagsTest : public ::testing::TestWithParam<Case> {};

TEST_P(FlagsTest, RefusedWithExitCode2AndTheRange) {
  const Case& c = GetParam();
  std::vector<std::string> args = {"--backend=cpu"};
  args.insert(args.end(), c.args.begin(), c.args.end());
  const NpukdRun run = RunNpukd(args);
  std::printf("[attack] npukd %s -> exit %d: %s", c.args.front().c_str(),
              run.exit_code, run.output.c_str());
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_THAT(run.output, HasSubstr(c.expected));
  EXPECT_THAT(run.output, ::testing::Not(HasSubstr("serving on")));
}

std::string ConfigFile(const std::string& text) {
  const std::string path = TempDir() + "/npukd.conf";
  std::ofstream(path) << text;
  return path;
}

INSTANTIATE_TEST_SUITE_P(
    Flags, FlagsTest,
    ::testing::Values(
        Case{"PortAbove65535",
             {"--listen=127.0.0.1:70000"},
             "allowed 0 to 65535"},
        Case{"MetricsPortAbove65535",
             {"--metrics=127.0.0.1:65536"},
             "metrics_listen"},
        Case{"Uint32Wraps",
             {"--max_queue_size=4294967297"},
             "4294967297 is out of range"},
        Case{"PerModelUint32Wraps",
             {"--max_batch_frames=mel:4294967297"},
             "out of range"},
        Case{"NegativeDrainTimeout", {"--drain_timeout=-5s"}, "is negative"},
        Case{
            "NegativeHealthInterval", {"--health_interval=-1s"}, "is negative"},
        Case{"HugeDrainTimeout", {"--drain_timeout=100000h"}, "out of range"},
        Case{"MillionCpuThreads",
             {"--cpu_threads=1000000"},
             "allowed 1 to 1024"},
        Case{"NegativeCpuThreads", {"--cpu_threads=-3"}, "is negative"},
        Case{"UppercaseLogLevelStillPrintsTheFatalError",
             {"--log_level=INFO", "--listen=127.0.0.1:70000"},
             "allowed 0 to 65535"},
        Case{"ErrorLogLevelStillPrintsTheFatalError",
             {"--log_level=error", "--cpu_threads=1000000"},
             "allowed 1 to 1024"},
        Case{"UnknownLogLevel",
             {"--log_level=loud"},
             "expected trace, debug, info, warn or error"},
        Case{"MessageSizeAboveInt",
             {"--config=" + ConfigFile("max_message_bytes: 3000000000\n")},
             "2147483647"},
        Case{"QueueSizeInConfig",
             {"--config=" +
              ConfigFile("models { name: \"mel\" max_queue_size: 4000000 }\n")},
             "max_queue_size for 'mel'"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace npuk::testing
