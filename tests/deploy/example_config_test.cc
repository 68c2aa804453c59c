// deploy/npukd.conf is what operators copy: it must load and finalize with
// the daemon's own code, and document every field of the Config proto.
#include <fstream>
#include <sstream>
#include <string>

#include "config.pb.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"
#include "server/config.h"

namespace npuk {
namespace {

std::string ExampleConfigPath() { return NPUK_EXAMPLE_CONFIG; }

TEST(ExampleConfig, LoadsAndFinalizes) {
  absl::StatusOr<config::Config> config = LoadConfigFile(ExampleConfigPath());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(FinalizeConfig(*config).ok());
  EXPECT_EQ(config->backend(), "cpu");
  EXPECT_EQ(config->socket_mode(), 0660u);  // written in octal
  // FinalizeConfig gives every registered model settings.
  EXPECT_EQ(static_cast<size_t>(config->models_size()), AllKernels().size());
  EXPECT_EQ(config->health_interval_ms(), 4000u);
  EXPECT_EQ(config->faults_size(), 0) << "the example must not inject faults";
}

// Every field of every message reachable from Config appears by name in the
// example (set or commented out), so nothing is undocumented.
void ExpectDocumented(const google::protobuf::Descriptor* d,
                      const std::string& text) {
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    const bool present = text.find(f->name() + ":") != std::string::npos ||
                         text.find(f->name() + " {") != std::string::npos;
    EXPECT_TRUE(present) << d->name() << "." << f->name()
                         << " is missing from deploy/npukd.conf";
    if (f->message_type() != nullptr) {
      ExpectDocumented(f->message_type(), text);
    }
  }
}

TEST(ExampleConfig, DocumentsEveryField) {
  std::ifstream in(ExampleConfigPath());
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty());
  ExpectDocumented(config::Config::descriptor(), text.str());
}

}  // namespace
}  // namespace npuk
