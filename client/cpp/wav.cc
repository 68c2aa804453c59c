#include "client/cpp/wav.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace npuk {
namespace {

uint32_t Le32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint16_t Le16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

absl::StatusOr<std::vector<float>> ReadWav16kMono(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open WAV file '", path, "': check the path"));
  }
  const std::string data((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a usable WAV file (", why,
                     "); convert it with: sox IN -r 16000 -c 1 -b 16 OUT.wav"));
  };
  if (data.size() < 12 || data.compare(0, 4, "RIFF") != 0 ||
      data.compare(8, 4, "WAVE") != 0) {
    return bad("no RIFF/WAVE header");
  }
  uint16_t format = 0, channels = 0, bits = 0;
  uint32_t rate = 0;
  const char* samples = nullptr;
  size_t sample_bytes = 0;
  for (size_t pos = 12; pos + 8 <= data.size();) {
    const absl::string_view id(data.data() + pos, 4);
    const size_t size = Le32(data.data() + pos + 4);
    const char* body = data.data() + pos + 8;
    const size_t avail = data.size() - pos - 8;
    if (id == "fmt " && size >= 16 && avail >= 16) {
      format = Le16(body);
      channels = Le16(body + 2);
      rate = Le32(body + 4);
      bits = Le16(body + 14);
      if (format == 0xFFFE && size >= 26) format = Le16(body + 24);
    } else if (id == "data") {
      samples = body;
      // Streaming writers (espeak-ng to a pipe) leave the size unset.
      sample_bytes = std::min(size, avail);
      break;
    }
    pos += 8 + size + (size & 1);
  }
  if (channels == 0) return bad("no fmt chunk");
  if (samples == nullptr) return bad("no data chunk");
  if (rate != 16000) {
    return bad(absl::StrCat("sample rate ", rate, " Hz, need 16000 Hz"));
  }
  const bool pcm16 = format == 1 && bits == 16;
  const bool f32 = format == 3 && bits == 32;
  if (!pcm16 && !f32) {
    return bad(absl::StrCat("format ", format, " with ", bits,
                            " bits; need 16-bit PCM or 32-bit float"));
  }
  const size_t width = bits / 8;
  const size_t frames = sample_bytes / (width * channels);
  std::vector<float> out(frames);
  for (size_t i = 0; i < frames; ++i) {
    float sum = 0;
    for (size_t c = 0; c < channels; ++c) {
      const char* p = samples + (i * channels + c) * width;
      if (pcm16) {
        int16_t s;
        std::memcpy(&s, p, 2);
        sum += s / 32768.0f;
      } else {
        float s;
        std::memcpy(&s, p, 4);
        sum += s;
      }
    }
    out[i] = sum / channels;
  }
  return out;
}

}  // namespace npuk
