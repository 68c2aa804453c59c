// Whisper-ready log-mel features from a WAV file, computed by npukd.
//   npuk_wav_features speech.wav [--target=unix:PATH]
#include <cstdio>
#include <string>

#include "client/cpp/client.h"
#include "client/cpp/wav.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.wav [unix:PATH|HOST:PORT]\n", argv[0]);
    return 1;
  }
  auto audio = npuk::ReadWav16kMono(argv[1]);  // 16 kHz mono float
  auto client = npuk::Client::Connect({.target = argc > 2 ? argv[2] : ""});
  if (!audio.ok() || !client.ok()) {
    std::fprintf(
        stderr, "%s\n",
        (!audio.ok() ? audio.status() : client.status()).ToString().c_str());
    return 1;
  }
  auto mel = (*client)->LogMelSpectrogram(*audio);  // [80, frames], one request
  if (!mel.ok()) {
    std::fprintf(stderr, "%s\n", mel.status().ToString().c_str());
    return 1;
  }
  std::printf("features [80, %zu]; daemon compute %.0f us on %s\n", mel->frames,
              absl::ToDoubleMicroseconds(mel->timing.compute),
              mel->timing.backend.c_str());
  return 0;
}
