"""mel_kernel_simple against Whisper's float log-mel (issue 2):
|q/16 - 4 - log10 P| <= 0.0625 on every bin with log10 P >= -9, mean <= 0.02."""

import numpy as np
import pytest

from conftest import (SAMPLE_RATE, frames_of, log10_mel_float, speech_16k,
                      to_int16)

MAX_ERROR = 0.0625
MEAN_ERROR = 0.02
FLOOR = -9.0


def errors(kernels, frames):
    q = kernels.mel(frames).astype(np.float64)
    reference = log10_mel_float(frames)
    mask = reference >= FLOOR
    return np.abs(q / 16.0 - 4.0 - reference)[mask], mask


def check(kernels, frames, what):
    err, mask = errors(kernels, frames)
    assert mask.sum() > 0, f"{what}: no bin above the floor, test is vacuous"
    worst = err.max()
    mean = err.mean()
    print(f"{what}: {frames.shape[0]} frames, {mask.sum()} bins checked, "
          f"max {worst:.4f}, mean {mean:.4f}")
    assert worst <= MAX_ERROR, f"{what}: max error {worst:.4f}"
    assert mean <= MEAN_ERROR, f"{what}: mean error {mean:.4f}"


def test_filterbank_matches_whisper_shape():
    from conftest import FILTERS
    assert FILTERS.shape == (80, 201)
    # Slaney normalisation: constant area in Hz (2 / bandwidth peak).
    assert 0.02 < FILTERS.max() < 0.03


@pytest.mark.parametrize("text,voice", [
    ("The quick brown fox jumps over the lazy dog. She sells sea shells "
     "by the sea shore.", "en"),
    ("Whisper listens to twenty five millisecond frames, eighty mel bands "
     "each, sixteen thousand samples per second.", "en-us"),
])
def test_speech(kernels, tmp_path, text, voice):
    samples = speech_16k(tmp_path, text, voice)
    frames = frames_of(samples)
    assert frames.shape[0] > 100
    check(kernels, frames, f"speech ({voice})")


def test_speech_quiet_and_loud(kernels, tmp_path):
    samples = speech_16k(tmp_path, "Testing one two three, loud and quiet.")
    x = samples.astype(np.float64) / 32768.0
    peak = np.abs(x).max()
    for gain_db in (-40.0, -20.0, 0.0):
        scaled = to_int16(x / peak * 10 ** (gain_db / 20.0) * 0.999)
        check(kernels, frames_of(scaled), f"speech at {gain_db:+.0f} dBFS")


def synthetic_signals():
    rng = np.random.default_rng(20261124)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    signals = {}
    for hz in (60.0, 440.0, 1000.0, 3150.0, 7900.0):
        for amp in (1.0, 0.1, 0.001):
            signals[f"tone {hz:.0f} Hz amp {amp}"] = to_int16(
                amp * 0.999 * np.sin(2 * np.pi * hz * t))
    signals["chirp"] = to_int16(0.7 * np.sin(2 * np.pi * (50 * t +
                                                          3900 * t * t)))
    signals["white noise"] = to_int16(np.clip(0.2 * rng.normal(size=t.size),
                                              -1, 1))
    signals["pink-ish noise"] = to_int16(
        0.3 * np.cumsum(rng.normal(size=t.size)) /
        np.sqrt(np.arange(1, t.size + 1)))
    signals["clipping square 1 kHz"] = to_int16(
        np.where(np.sin(2 * np.pi * 1000 * t) >= 0, 1.0, -1.0))
    signals["clipping square 97 Hz"] = to_int16(
        np.where(np.sin(2 * np.pi * 97 * t) >= 0, 1.0, -1.0))
    impulses = np.zeros(t.size)
    impulses[::331] = 0.9
    signals["impulses"] = to_int16(impulses)
    signals["DC"] = to_int16(np.full(t.size, 0.5))
    signals["tone plus DC"] = to_int16(0.4 + 0.5 * np.sin(2 * np.pi * 700 * t))
    return signals


@pytest.mark.parametrize("name,signal", list(synthetic_signals().items()))
def test_synthetic(kernels, name, signal):
    check(kernels, frames_of(signal), name)


def test_silence_is_floor(kernels):
    q = kernels.mel(np.zeros((2, 400), np.int16))
    assert (q == -96).all()


def test_random_full_scale(kernels):
    rng = np.random.default_rng(7)
    frames = rng.integers(-32768, 32768, size=(500, 400)).astype(np.int16)
    check(kernels, frames, "uniform random full scale")


def test_all_speech_bins_aggregate(kernels, tmp_path):
    """The mean bound over every checked bin of one long utterance."""
    samples = speech_16k(
        tmp_path, "Four score and seven years ago our fathers brought forth "
        "on this continent a new nation, conceived in liberty.")
    err, _ = errors(kernels, frames_of(samples))
    assert err.mean() <= MEAN_ERROR
    assert err.max() <= MAX_ERROR
