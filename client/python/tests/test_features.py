"""The host halves of log_mel_spectrogram and attention, without a daemon:
framing/normalisation around a float stand-in for the mel kernel must match
Whisper's algorithm, so a daemon test failure points at the kernel."""

import numpy as np
import pytest

import npuk
import whisper_ref


def fake_mel_kernel(frames):
    """The mel kernel's contract in float: int16 frames -> int8 q with
    log10 P = q/16 - 4."""
    x = frames.astype(np.float64) / 32768.0
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    p = np.abs(np.fft.rfft(x * window, axis=1)) ** 2
    mel = p @ whisper_ref.mel_filters().T
    q = np.rint(16 * (np.log10(np.maximum(mel, 1e-10)) + 4))
    return np.clip(q, -128, 127).astype(np.int8)


def test_int16_conversion_rounds_and_clips():
    x = np.array([0, 1.0, 2.0, -1.0, -3.0, 0.5, 1.4 / 32768, 1.6 / 32768])
    assert npuk.audio_to_int16(x).tolist() == [
        0, 32767, 32767, -32768, -32768, 16384, 1, 2]


def test_frame_count_matches_whisper():
    assert npuk.log_mel_frames(480000) == 3000  # 30 s clip: one request
    assert npuk.frame_audio(np.zeros(16159)).shape == (100, 400)


def test_framing_reflects_like_torch_stft():
    audio = np.arange(1000, dtype=np.float32) / 32768
    f = npuk.frame_audio(audio)
    assert f.shape == (6, 400) and f.dtype == np.int16
    assert f[0, 0] == 200 and f[0, 199] == 1 and f[0, 200] == 0
    assert f[1, 0] == 40 and f[5, 399] == 999


def test_short_clip_is_refused_with_reason():
    with pytest.raises(ValueError, match="200 samples"):
        npuk.frame_audio(np.zeros(200))


def test_host_halves_reproduce_whisper_on_speech(tmp_path):
    audio, _ = whisper_ref.speech(tmp_path, "The quick brown fox jumps over "
                                  "the lazy dog near the river bank.")
    ours = npuk.normalize_log_mel(fake_mel_kernel(npuk.frame_audio(audio)))
    print(whisper_ref.assert_close_to_whisper(ours, audio))


def test_quantize_is_per_tensor_symmetric():
    x = np.array([[-2.54, 0.0, 1.27]], dtype=np.float32)
    q, s = npuk.quantize(x)
    assert s == pytest.approx(2.54 / 127)
    assert q.tolist() == [[-127, 0, 64]]
    q0, s0 = npuk.quantize(np.zeros(3))
    assert s0 == 1.0 and not q0.any()


def test_default_target_follows_the_daemon_lookup(monkeypatch):
    for v in ("NPUK_TARGET", "NPUK_SOCKET", "RUNTIME_DIRECTORY",
              "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert npuk.default_socket_path() == "/run/user/1000/npukd.sock"
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/npukd:/run/other")
    assert npuk.default_socket_path() == "/run/npukd/npukd.sock"
    monkeypatch.setenv("NPUK_SOCKET", "/tmp/x.sock")
    assert npuk.default_target() == "unix:/tmp/x.sock"
    monkeypatch.setenv("NPUK_TARGET", "127.0.0.1:9")
    assert npuk.default_target() == "127.0.0.1:9"


def test_malformed_target_names_the_accepted_forms():
    for bad in ("unix:", "localhost", ":80"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            npuk.Client(bad)
