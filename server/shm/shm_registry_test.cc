#include "server/shm/shm_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace npuk::shm {
namespace {

// A POSIX shm object owned by one test, unlinked at the end.
class ShmObject {
 public:
  explicit ShmObject(size_t size)
      : key_(absl::StrCat("/npuk_shm_test_", getpid(), "_", counter_++)) {
    const int fd = shm_open(key_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }
  ~ShmObject() { shm_unlink(key_.c_str()); }
  const std::string& key() const { return key_; }
  void Truncate(size_t size) {
    const int fd = shm_open(key_.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
  }
  // Writes/reads through an independent mapping (what a client does).
  void Write(size_t offset, const std::vector<uint8_t>& bytes) {
    const int fd = shm_open(key_.c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(
        pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)),
        static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  std::vector<uint8_t> Read(size_t offset, size_t n) {
    std::vector<uint8_t> out(n);
    const int fd = shm_open(key_.c_str(), O_RDWR, 0);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(pread(fd, out.data(), n, static_cast<off_t>(offset)),
              static_cast<ssize_t>(n));
    close(fd);
    return out;
  }

 private:
  static inline int counter_ = 0;
  std::string key_;
};

TEST(ShmRegistry, RegisterStatusUnregister) {
  ShmObject obj(8192);
  SharedMemoryRegistry reg;
  ASSERT_TRUE(reg.Register("a", obj.key(), 0, 4096).ok());
  ASSERT_TRUE(reg.Register("b", obj.key(), 4096, 100).ok());
  auto all = reg.Status("");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "a");
  EXPECT_EQ((*all)[1].offset, 4096u);
  EXPECT_EQ((*all)[1].byte_size, 100u);
  EXPECT_EQ((*all)[1].key, obj.key());
  auto one = reg.Status("b");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
  EXPECT_EQ(reg.Status("zzz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(reg.Register("a", obj.key(), 0, 1).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(reg.Unregister("a").ok());
  EXPECT_TRUE(reg.Unregister("a").ok());  // as Triton: absent is fine
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_TRUE(reg.Unregister("").ok());
  EXPECT_EQ(reg.size(), 0u);
}

TEST(ShmRegistry, BadRegistrations) {
  ShmObject obj(4096);
  SharedMemoryRegistry reg;
  auto code = [&](absl::string_view name, absl::string_view key, uint64_t off,
                  uint64_t size) { return reg.Register(name, key, off, size); };
  EXPECT_EQ(code("", obj.key(), 0, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("x", "", 0, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("x", obj.key(), 0, 0).code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status past = code("x", obj.key(), 1, 4096);
  EXPECT_EQ(past.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(past.message().find("past the end"), std::string::npos)
      << past.message();
  EXPECT_EQ(code("x", obj.key(), UINT64_MAX, 2).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code("x", obj.key(), 4096, 1).code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status missing = code("x", "/npuk_no_such_object_ever", 0, 1);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("create it first"), std::string::npos);
  EXPECT_EQ(code("x", std::string("/a\0b", 4), 0, 1).code(),
            absl::StatusCode::kInvalidArgument);
  // Long client names are quoted only up to a bounded prefix.
  const std::string long_key(10000, 'k');
  const absl::Status long_status = code("x", long_key, 0, 1);
  EXPECT_EQ(long_status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(long_status.message().size(), 400u) << long_status.message();
  const std::string long_name(10000, 'n');
  EXPECT_LT(code(long_name, obj.key(), 0, 1).message().size(), 400u);
  EXPECT_EQ(reg.size(), 0u);
}

TEST(ShmRegistry, LimitOnRegions) {
  ShmObject obj(4096);
  RegistryLimits limits;
  limits.max_regions = 2;
  SharedMemoryRegistry reg(limits);
  ASSERT_TRUE(reg.Register("a", obj.key(), 0, 1).ok());
  ASSERT_TRUE(reg.Register("b", obj.key(), 0, 1).ok());
  EXPECT_EQ(reg.Register("c", obj.key(), 0, 1).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ShmRegistry, ResolveChecksEveryBound) {
  ShmObject obj(3 * 4096);
  SharedMemoryRegistry reg;
  // An unaligned region offset: mmap needs page alignment, the registry
  // hides it.
  ASSERT_TRUE(reg.Register("r", obj.key(), 4096 + 7, 1000).ok());
  EXPECT_EQ(reg.Resolve("nope", 0, 1, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.Resolve("r", 0, 1001, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.Resolve("r", 1001, 0, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.Resolve("r", 999, 2, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.Resolve("r", UINT64_MAX, 2, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reg.Resolve("r", 2, UINT64_MAX, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto view = reg.Resolve("r", 10, 990, "input 'x'");
  ASSERT_TRUE(view.ok()) << view.status();

  std::vector<uint8_t> pattern(990);
  for (size_t i = 0; i < pattern.size(); ++i) {
    pattern[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  obj.Write(4096 + 7 + 10, pattern);
  std::vector<uint8_t> got(990);
  ASSERT_TRUE(view->CopyTo(absl::MakeSpan(got), "input 'x'").ok());
  EXPECT_EQ(got, pattern);

  std::vector<uint8_t> back(990, 0x5a);
  ASSERT_TRUE(view->CopyFrom(back, "output 'y'").ok());
  EXPECT_EQ(obj.Read(4096 + 7 + 10, 990), back);
}

TEST(ShmRegistry, UnregisterWhileInUseKeepsTheMapping) {
  ShmObject obj(4096);
  SharedMemoryRegistry reg;
  ASSERT_TRUE(reg.Register("r", obj.key(), 0, 4096).ok());
  auto view = reg.Resolve("r", 0, 4096, "input 'x'");
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(reg.Unregister("r").ok());
  EXPECT_EQ(reg.Resolve("r", 0, 1, "input 'x'").status().code(),
            absl::StatusCode::kInvalidArgument);
  // The view still owns the mapping: reading and writing are safe.
  std::vector<uint8_t> bytes(4096, 3);
  EXPECT_TRUE(view->CopyFrom(bytes, "output 'y'").ok());
  EXPECT_EQ(obj.Read(0, 4096), bytes);
}

TEST(ShmRegistry, TruncatedObjectIsAnErrorNotACrash) {
  ShmObject obj(4 * 4096);
  SharedMemoryRegistry reg;
  ASSERT_TRUE(reg.Register("r", obj.key(), 0, 4 * 4096).ok());
  auto view = reg.Resolve("r", 0, 4 * 4096, "input 'x'");
  ASSERT_TRUE(view.ok());
  obj.Truncate(4096);
  std::vector<uint8_t> got(4 * 4096);
  const absl::Status read = view->CopyTo(absl::MakeSpan(got), "input 'x'");
  EXPECT_EQ(read.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(read.message().find("truncated"), std::string::npos);
  const absl::Status write = view->CopyFrom(got, "output 'y'");
  EXPECT_EQ(write.code(), absl::StatusCode::kInvalidArgument);
  // The guard is per copy: the next copy within the object works.
  auto first_page = reg.Resolve("r", 0, 4096, "input 'x'");
  ASSERT_TRUE(first_page.ok());
  std::vector<uint8_t> page(4096);
  EXPECT_TRUE(first_page->CopyTo(absl::MakeSpan(page), "input 'x'").ok());
}

TEST(ShmRegistry, ConcurrentRegisterResolveUnregister) {
  ShmObject obj(4096);
  SharedMemoryRegistry reg;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = absl::StrCat("r", t % 2);
      std::vector<uint8_t> buf(64);
      for (int i = 0; i < 300; ++i) {
        (void)reg.Register(name, obj.key(), 0, 4096);
        auto v = reg.Resolve(name, 64, 64, "input 'x'");
        if (v.ok()) {
          EXPECT_TRUE(v->CopyTo(absl::MakeSpan(buf), "input 'x'").ok());
        }
        if (i % 3 == 0) (void)reg.Unregister(name);
        (void)reg.Status("");
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace npuk::shm
