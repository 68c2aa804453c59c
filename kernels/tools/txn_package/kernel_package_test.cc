#include "kernels/tools/txn_package/kernel_package.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/registry/registry.h"

namespace npuk::kernelpkg {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class KernelPackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    absl::StatusOr<const txn::Design*> mel = txn::DesignFor("mel");
    ASSERT_TRUE(mel.ok()) << mel.status();
    ASSERT_TRUE(WriteSimPackage(dir_, **mel, {4, 8, 16}).ok());
  }
  fs::path dir_;
};

TEST_F(KernelPackageTest, LoadsWhatItWrote) {
  absl::StatusOr<LoadedPackage> pkg = LoadPackage(dir_, "mel", kTargetSim);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  EXPECT_EQ(pkg->sequences.size(), 3u);
  EXPECT_TRUE(pkg->sequences.contains(16));
  EXPECT_EQ(pkg->manifest.xclbin_kernel(), "MLIR_AIE");
  EXPECT_TRUE(fs::exists(pkg->xclbin_path));
}

TEST_F(KernelPackageTest, EveryRegisteredKernelRoundTrips) {
  const fs::path dir = dir_ / "all";
  for (const KernelSpec* spec : AllKernels()) {
    ASSERT_TRUE(
        WriteSimPackage(dir, txn::DesignFor(*spec), txn::StandardBatchSizes())
            .ok());
    absl::StatusOr<LoadedPackage> pkg =
        LoadPackage(dir, spec->name, kTargetSim);
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    EXPECT_EQ(pkg->sequences.size(), txn::StandardBatchSizes().size());
    const std::vector<size_t> want = spec->all_arg_bytes();
    ASSERT_EQ(pkg->manifest.arg_bytes_per_item_size(),
              static_cast<int>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(pkg->manifest.arg_bytes_per_item(static_cast<int>(i)), want[i])
          << spec->name << " arg " << i;
    }
  }
}

TEST_F(KernelPackageTest, RefusesMissingPackage) {
  absl::Status s = LoadPackage(dir_, "attention", kTargetSim).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("xrt.kernel_dir"));
}

TEST_F(KernelPackageTest, RefusesWrongTarget) {
  absl::Status s = LoadPackage(dir_, "mel", kTargetNpu1).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("built for target"));
}

TEST_F(KernelPackageTest, RefusesTamperedInstructions) {
  std::fstream f(dir_ / "mel" / "insts_4.bin",
                 std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(20);
  f.put('\x7f');
  f.close();
  absl::Status s = LoadPackage(dir_, "mel", kTargetSim).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("SHA-256"));
}

TEST_F(KernelPackageTest, RefusesInvalidInstructionsEvenWithMatchingHash) {
  // A binary for the wrong N, relabelled: hashes match, validation does not.
  fs::copy_file(dir_ / "mel" / "insts_4.bin", dir_ / "mel" / "insts_8.bin",
                fs::copy_options::overwrite_existing);
  absl::StatusOr<LoadedPackage> pkg = LoadPackage(dir_, "mel", kTargetSim);
  ASSERT_FALSE(pkg.ok());  // size mismatch first
  std::string json = *ReadFile(dir_ / "mel" / kManifestFile);
  Manifest m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok());
  ASSERT_TRUE(WriteManifest(dir_ / "mel", m).ok());
  absl::Status s = LoadPackage(dir_, "mel", kTargetSim).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("insts_8.bin (N=8)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("expected 6400"));
}

TEST_F(KernelPackageTest, RefusesMismatchedArgumentSizes) {
  std::string json = *ReadFile(dir_ / "mel" / kManifestFile);
  Manifest m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok());
  m.set_arg_bytes_per_item(0, 1024);
  ASSERT_TRUE(WriteManifest(dir_ / "mel", m).ok());
  absl::Status s = LoadPackage(dir_, "mel", kTargetSim).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("[1024, 80]"));
}

TEST_F(KernelPackageTest, RefusesPathEscape) {
  std::string json = *ReadFile(dir_ / "mel" / kManifestFile);
  Manifest m;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok());
  m.mutable_xclbin()->set_file("../mel/mel.xclbin");
  std::string out;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(m, &out).ok());
  std::ofstream(dir_ / "mel" / kManifestFile) << out;
  absl::Status s = LoadPackage(dir_, "mel", kTargetSim).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("relative path inside"));
}

}  // namespace
}  // namespace npuk::kernelpkg
