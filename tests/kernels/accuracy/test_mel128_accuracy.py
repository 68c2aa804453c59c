"""mel128_kernel_simple against Whisper's float log-mel with 128 bands
(issue 11, the features of large-v3 and large-v3-turbo): the same bounds as
the 80-band kernel (test_mel_accuracy.py), |q/16 - 4 - log10 P| <= 0.0625
on every bin with log10 P >= -9, mean <= 0.02, on the same signals."""

import ctypes

import numpy as np
import pytest

from conftest import (HANN, N_FFT, frames_of, slaney_filterbank, speech_16k,
                      to_int16)
from test_mel_accuracy import FLOOR, MAX_ERROR, MEAN_ERROR, synthetic_signals

N_MELS = 128
FILTERS = slaney_filterbank(n_mels=N_MELS)

# Measured from openai/whisper's whisper/assets/mel_filters.npz ("mel_128",
# float32); the file itself is not part of this project.
WHISPER_MEL128_SUM = 3.1909855409403463
WHISPER_MEL128_MAX = 0.04168175160884857  # band 11, bin 7
WHISPER_MEL128_NONZERO = 394


@pytest.fixture(scope="session")
def mel128(kernels):
    fn = kernels.lib.mel128_kernel_simple
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = None

    def run(frames):
        frames = np.ascontiguousarray(frames, dtype=np.int16)
        out = np.zeros((frames.shape[0], N_MELS), np.int8)
        for i in range(frames.shape[0]):
            fn(frames[i].ctypes.data, out[i].ctypes.data)
        return out

    return run


def log10_mel128_float(frames_int16):
    """log10(max(mel power, 1e-10)) per frame, float64, x = s / 32768."""
    x = frames_int16.astype(np.float64) / 32768.0
    power = np.abs(np.fft.rfft(x * HANN, n=N_FFT, axis=-1)) ** 2
    return np.log10(np.maximum(power @ FILTERS.T, 1e-10))


def errors(mel128, frames):
    q = mel128(frames).astype(np.float64)
    reference = log10_mel128_float(frames)
    mask = reference >= FLOOR
    return np.abs(q / 16.0 - 4.0 - reference)[mask], mask


def check(mel128, frames, what):
    err, mask = errors(mel128, frames)
    assert mask.sum() > 0, f"{what}: no bin above the floor, test is vacuous"
    worst = err.max()
    mean = err.mean()
    print(f"mel128 {what}: {frames.shape[0]} frames, {mask.sum()} bins "
          f"checked, max {worst:.4f}, mean {mean:.4f}")
    assert worst <= MAX_ERROR, f"{what}: max error {worst:.4f}"
    assert mean <= MEAN_ERROR, f"{what}: mean error {mean:.4f}"


def test_filterbank_is_whispers():
    assert FILTERS.shape == (128, 201)
    assert int((FILTERS > 0).sum()) == WHISPER_MEL128_NONZERO
    assert abs(FILTERS.sum() - WHISPER_MEL128_SUM) < 1e-6
    assert abs(FILTERS.max() - WHISPER_MEL128_MAX) < 1e-8
    assert np.unravel_index(FILTERS.argmax(), FILTERS.shape) == (11, 7)
    # No empty band: every one of the 128 triangles holds an FFT bin.
    assert (FILTERS.max(axis=1) > 0).all()


@pytest.mark.parametrize("text,voice", [
    ("The quick brown fox jumps over the lazy dog. She sells sea shells "
     "by the sea shore.", "en"),
    ("Large version three listens with one hundred and twenty eight mel "
     "bands, sixteen thousand samples per second.", "en-us"),
])
def test_speech(mel128, tmp_path, text, voice):
    samples = speech_16k(tmp_path, text, voice)
    frames = frames_of(samples)
    assert frames.shape[0] > 100
    check(mel128, frames, f"speech ({voice})")


def test_speech_quiet_and_loud(mel128, tmp_path):
    samples = speech_16k(tmp_path, "Testing one two three, loud and quiet.")
    x = samples.astype(np.float64) / 32768.0
    peak = np.abs(x).max()
    for gain_db in (-40.0, -20.0, 0.0):
        scaled = to_int16(x / peak * 10 ** (gain_db / 20.0) * 0.999)
        check(mel128, frames_of(scaled), f"speech at {gain_db:+.0f} dBFS")


@pytest.mark.parametrize("name,signal", list(synthetic_signals().items()))
def test_synthetic(mel128, name, signal):
    check(mel128, frames_of(signal), name)


def test_silence_is_floor(mel128):
    q = mel128(np.zeros((2, 400), np.int16))
    assert (q == -96).all()


def test_random_full_scale(mel128):
    rng = np.random.default_rng(7)
    frames = rng.integers(-32768, 32768, size=(500, 400)).astype(np.int16)
    check(mel128, frames, "uniform random full scale")


def test_low_bands_resolve_low_tones(mel128):
    """The 128-band filterbank's narrow low bands (47 Hz wide below 1 kHz,
    against 40 Hz FFT bins) peak where the float reference does."""
    t = np.arange(16000) / 16000
    for hz in (100.0, 180.0, 260.0, 500.0):
        frames = frames_of(to_int16(0.5 * np.sin(2 * np.pi * hz * t)))
        q = mel128(frames)
        reference = log10_mel128_float(frames)
        assert (q.argmax(axis=1) == reference.argmax(axis=1)).mean() > 0.95


def test_all_speech_bins_aggregate(mel128, tmp_path):
    """The mean bound over every checked bin of one long utterance."""
    samples = speech_16k(
        tmp_path, "Four score and seven years ago our fathers brought forth "
        "on this continent a new nation, conceived in liberty.")
    err, _ = errors(mel128, frames_of(samples))
    assert err.mean() <= MEAN_ERROR
    assert err.max() <= MAX_ERROR
