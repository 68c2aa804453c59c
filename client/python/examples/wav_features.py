#!/usr/bin/python3
"""Whisper-ready log-mel features of a 16 kHz WAV file, computed by npukd.

    /usr/bin/python3 wav_features.py speech.wav [unix:PATH|HOST:PORT]
"""
import sys

import npuk

with npuk.Client(sys.argv[2] if len(sys.argv) > 2 else None) as client:
    mel = client.log_mel_spectrogram(sys.argv[1])  # float32 [80, n_frames]
    t = client.last_timing
    print("features %s; daemon compute %d us on %s"
          % (mel.shape, t.compute_us, t.backend))
    # whisper: model.decode(torch.from_numpy(whisper.pad_or_trim(mel, 3000)))
