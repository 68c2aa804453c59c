#!/usr/bin/python3
"""Whisper-ready log-mel features of a 16 kHz WAV file, computed by npukd.

    /usr/bin/python3 wav_features.py speech.wav [unix:PATH|HOST:PORT]
"""
import sys

import npuk

with npuk.Client(sys.argv[2] if len(sys.argv) > 2 else None) as client:
    # float32 [80, n_frames]; numpy here (a torch.Tensor without as_numpy
    # when torch is installed, as whisper's function returns).
    mel = client.log_mel_spectrogram(sys.argv[1], as_numpy=True)
    t = client.last_timing
    print("features %s; daemon compute %d us on %s"
          % (mel.shape, t.compute_us, t.backend))
    # whisper: model.decode(torch.from_numpy(whisper.pad_or_trim(mel, 3000)))
    # or npuk.whisper.patch() and an unmodified whisper.transcribe().
