// npu-sim stand-in for xrt/xrt_uuid.h.
#ifndef NPUSIM_XRT_XRT_UUID_H_
#define NPUSIM_XRT_XRT_UUID_H_

#include <array>
#include <string>

namespace xrt {
inline namespace npusim {

class uuid {
 public:
  uuid() = default;
  // 32 hex digits, dashes allowed; throws std::invalid_argument otherwise.
  explicit uuid(const std::string& uuid_str);
  std::string to_string() const;
  explicit operator bool() const;
  bool operator==(const uuid& other) const { return bytes_ == other.bytes_; }
  bool operator!=(const uuid& other) const { return !(*this == other); }

 private:
  std::array<unsigned char, 16> bytes_{};
};

}  // namespace npusim
}  // namespace xrt

#endif  // NPUSIM_XRT_XRT_UUID_H_
