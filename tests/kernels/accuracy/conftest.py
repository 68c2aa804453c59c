"""Shared helpers of the kernel accuracy tests: the C kernels via ctypes and
float references written from the published algorithms (Whisper's log-mel,
librosa's Slaney filterbank, softmax attention)."""

import ctypes
import os
import pathlib
import shutil
import subprocess
import wave

import numpy as np
import pytest

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80


def _library_path():
    path = os.environ.get("NPUK_KERNELS_LIB")
    if not path:
        pytest.fail("NPUK_KERNELS_LIB is not set: run these tests through "
                    "ctest, or point it at libnpuk_kernels_shared.so")
    if not pathlib.Path(path).exists():
        pytest.fail(f"NPUK_KERNELS_LIB={path} does not exist: build the "
                    "npuk_kernels_shared target first")
    return path


class Kernels:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.mel_kernel_simple.argtypes = [ctypes.c_void_p,
                                               ctypes.c_void_p]
        self.lib.attention_64x64.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                                             ctypes.c_int32, ctypes.c_int32]

    def mel(self, frames):
        frames = np.ascontiguousarray(frames, dtype=np.int16)
        out = np.zeros((frames.shape[0], N_MELS), np.int8)
        for i in range(frames.shape[0]):
            self.lib.mel_kernel_simple(frames[i].ctypes.data,
                                       out[i].ctypes.data)
        return out

    def attention(self, q, k, v, multiplier, shift):
        qkv = np.ascontiguousarray(
            np.concatenate([q.ravel(), k.ravel(), v.ravel()]), dtype=np.int8)
        out = np.zeros(4096, np.int8)
        self.lib.attention_64x64(qkv.ctypes.data, out.ctypes.data,
                                 multiplier, shift)
        return out.reshape(64, 64)


@pytest.fixture(scope="session")
def kernels():
    return Kernels(_library_path())


def quantize_score_scale(s):
    """DESIGN.md's score-scale function, restated from its definition:
    s = q 2^shift, q in [0.5, 1), multiplier = round_half_up(q 2^31)."""
    q, shift = np.frexp(s)
    multiplier = int(np.floor(q * 2.0**31 + 0.5))
    if multiplier == 2**31:
        multiplier //= 2
        shift += 1
    return multiplier, int(shift)


# --- Whisper's log-mel, from the published algorithm -----------------------

def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    logstep = np.log(6.4) / 27.0
    mels = f / f_sp
    return np.where(f >= 1000.0,
                    15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep,
                    mels)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)),
                    f_sp * m)


def slaney_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS):
    """librosa.filters.mel(sr, n_fft, n_mels, htk=False, norm='slaney')."""
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0),
                                  n_mels + 2))
    fft_freqs = np.linspace(0, sr / 2.0, 1 + n_fft // 2)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    return weights * enorm[:, None]


FILTERS = slaney_filterbank()
HANN = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic


def log10_mel_float(frames_int16):
    """log10(max(mel power, 1e-10)) per frame, float64, x = s / 32768."""
    x = frames_int16.astype(np.float64) / 32768.0
    spectrum = np.fft.rfft(x * HANN, n=N_FFT, axis=-1)
    power = np.abs(spectrum) ** 2
    mel = power @ FILTERS.T
    return np.log10(np.maximum(mel, 1e-10))


def frames_of(signal_int16):
    n = 1 + (len(signal_int16) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return signal_int16[idx]


def to_int16(x):
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def read_wav_int16(path):
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "expected 16-bit PCM"
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())[:, 0]
        return data.copy(), w.getframerate()


def speech_16k(tmp_path, text, voice="en"):
    """Speech from espeak-ng, resampled to 16 kHz with sox."""
    espeak = shutil.which("espeak-ng")
    sox = shutil.which("sox")
    if espeak is None or sox is None:
        pytest.fail("espeak-ng and sox are needed for the speech tests: "
                    "apt-get install -y espeak-ng sox")
    raw = tmp_path / "speech.wav"
    out = tmp_path / "speech16k.wav"
    subprocess.run([espeak, "-v", voice, "-w", str(raw), text], check=True,
                   capture_output=True)
    subprocess.run([sox, str(raw), "-r", "16000", "-b", "16", str(out)],
                   check=True, capture_output=True)
    samples, rate = read_wav_int16(out)
    assert rate == SAMPLE_RATE
    return samples
