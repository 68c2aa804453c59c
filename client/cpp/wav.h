// A small WAV reader for the examples and npukctl: enough to feed
// LogMelSpectrogram from a file without another dependency.
#ifndef NPUK_CLIENT_CPP_WAV_H_
#define NPUK_CLIENT_CPP_WAV_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace npuk {

// Reads a 16 kHz WAV (PCM 16-bit or IEEE float 32-bit; channels are averaged
// to mono) as float samples in [-1, 1]. Other rates are refused with a sox
// command that converts the file.
absl::StatusOr<std::vector<float>> ReadWav16kMono(const std::string& path);

}  // namespace npuk

#endif  // NPUK_CLIENT_CPP_WAV_H_
