"""npuk.whisper.patch() on openai/whisper's own source: after it, the function
whisper's transcribe() calls for its features is npukd's, and transcribe()'s
call (log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)) returns the
daemon's features; unpatch() restores whisper's own.

No model checkpoint is available offline, so no full transcription runs
here: the tests check the function transcribe() looks up and what it returns
for transcribe()'s exact call, and count the requests the daemon served."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Dict, Iterator

import numpy as np
import pytest

import npuk
import npuk.whisper

from conftest import Signal
from npukd_process import Npukd


@pytest.fixture(scope="module")
def daemon(npukd_binary: str, whisper_audio: ModuleType) -> Iterator[Npukd]:
    with Npukd(npukd_binary, ["--backend=cpu"]) as d:
        yield d


@pytest.fixture(autouse=True)
def always_unpatched() -> Iterator[None]:
    yield
    npuk.whisper.unpatch()


def served(target: str) -> int:
    with npuk.Client(target) as c:
        return c.stats("log_mel")["log_mel"]["success"]


def transcribe_source(whisper_audio: ModuleType) -> str:
    """whisper/transcribe.py beside the audio.py the tests imported."""
    d = os.path.dirname(whisper_audio.__file__)
    with open(os.path.join(d, "transcribe.py")) as f:
        return f.read()


def test_patch_replaces_whisper_audio_and_unpatch_restores(
        whisper_audio: ModuleType, daemon: Npukd,
        signals: Dict[str, Signal]) -> None:
    original = whisper_audio.log_mel_spectrogram
    assert original.__module__ == "whisper.audio"
    audio = signals["speech en-us 175wpm"].audio
    client = npuk.Client(daemon.target)
    npuk.whisper.patch(client=client)
    assert npuk.whisper.patched()
    assert whisper_audio.log_mel_spectrogram is npuk.whisper.log_mel_spectrogram
    before = served(daemon.target)
    for n_mels in (80, 128):
        # transcribe()'s call, through the name whisper.audio exports: it
        # goes through the patch's client (its last_timing is the daemon's).
        client.last_timing = None
        got = whisper_audio.log_mel_spectrogram(audio, n_mels,
                                                padding=whisper_audio.N_SAMPLES)
        assert client.last_timing is not None
        assert client.last_timing.backend == "cpu"
        import torch
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
        assert tuple(got.shape) == (n_mels, (audio.size + 480000) // 160)
        with npuk.Client(daemon.target) as c:
            direct = c.log_mel_spectrogram(audio, n_mels, 480000, as_numpy=True)
        np.testing.assert_array_equal(got.numpy(), direct)
        ref = original(audio, n_mels, padding=whisper_audio.N_SAMPLES).numpy()
        d = np.abs(got.numpy().astype(np.float64) - ref)
        assert d.max() <= 0.02 and d.mean() <= 0.006, (d.max(), d.mean())
        # Not whisper's own result: the daemon's rounding differs from it.
        assert not np.array_equal(got.numpy(), ref)
    assert served(daemon.target) > before
    npuk.whisper.unpatch()
    client.close()
    assert not npuk.whisper.patched()
    assert whisper_audio.log_mel_spectrogram is original


def test_transcribe_calls_the_name_patch_replaces(
        whisper_audio: ModuleType) -> None:
    """transcribe() looks log_mel_spectrogram up as a global of
    whisper.transcribe, bound by `from .audio import log_mel_spectrogram`,
    and calls it with padding=N_SAMPLES: so replacing that module attribute
    (or whisper.audio's before whisper.transcribe is imported) is what makes
    transcribe() take npukd's features."""
    tree = ast.parse(transcribe_source(whisper_audio))
    imports = [n for n in tree.body if isinstance(n, ast.ImportFrom) and
               n.module == "audio" and n.level == 1]
    assert any(a.name == "log_mel_spectrogram" and a.asname is None
               for n in imports for a in n.names)
    [fn] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and
            n.name == "transcribe"]
    rebinds = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and
               n.id == "log_mel_spectrogram" and
               isinstance(n.ctx, ast.Store)]
    assert not rebinds
    calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and
             isinstance(n.func, ast.Name) and
             n.func.id == "log_mel_spectrogram"]
    assert calls, "transcribe() no longer calls log_mel_spectrogram"
    assert any(k.arg == "padding" and isinstance(k.value, ast.Name) and
               k.value.id == "N_SAMPLES" for c in calls for k in c.keywords)


def _transcribe_importable() -> str:
    missing = [m for m in ("tqdm", "tiktoken", "numba")
               if importlib.util.find_spec(m) is None]
    return ", ".join(missing)


def test_whisper_transcribe_module_takes_npukd_features(
        whisper_audio: ModuleType, daemon: Npukd,
        signals: Dict[str, Signal]) -> None:
    missing = _transcribe_importable()
    if missing:
        pytest.skip("whisper.transcribe cannot be imported here: %s not "
                    "installed (Debian 12 has no tiktoken package; the "
                    "decoder's tokenizer and timing need them); the name it "
                    "uses is checked from its source instead" % missing)
    transcribe = importlib.import_module("whisper.transcribe")
    original = transcribe.log_mel_spectrogram
    npuk.whisper.patch(target=daemon.target)
    assert transcribe.log_mel_spectrogram is npuk.whisper.log_mel_spectrogram
    assert sys.modules["whisper"].log_mel_spectrogram is \
        npuk.whisper.log_mel_spectrogram
    audio = signals["speech en-gb+f3 130wpm"].audio
    before = served(daemon.target)
    got = transcribe.log_mel_spectrogram(audio, 128,
                                         padding=transcribe.N_SAMPLES)
    assert served(daemon.target) > before
    with npuk.Client(daemon.target) as c:
        np.testing.assert_array_equal(
            got.numpy(), c.log_mel_spectrogram(audio, 128, 480000,
                                               as_numpy=True))
    npuk.whisper.unpatch()
    assert transcribe.log_mel_spectrogram is original
