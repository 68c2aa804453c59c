"""Fixtures of the Whisper parity tests: openai/whisper's own audio.py run from
its source tree ($NPUK_UPSTREAM_DIR/openai+whisper), test signals made with
espeak-ng and sox, and a real npukd.

When the upstream tree (or python3-torch, which whisper.audio imports) is
missing every test is skipped with the reason and the session exits 77, which
ctest reports as SKIPPED (SKIP_RETURN_CODE), never as a pass."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import wave
from types import ModuleType
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

SKIP_CODE = 77
_skip_reasons: List[str] = []
# Rows of the parity table, printed at the end of the session.
ROWS: List[Tuple[str, ...]] = []


def _upstream_whisper_dir() -> Tuple[Optional[str], str]:
    root = os.environ.get("NPUK_UPSTREAM_DIR", "")
    if not root:
        return None, ("NPUK_UPSTREAM_DIR is not set: configure with "
                      "-DNPUK_UPSTREAM_DIR=DIR after scripts/upstream-sources.sh"
                      " DIR")
    d = os.path.join(root, "openai+whisper", "whisper")
    if not os.path.isfile(os.path.join(d, "audio.py")):
        return None, ("%s has no openai/whisper (no %s/audio.py): run "
                      "scripts/upstream-sources.sh %s" % (root, d, root))
    return d, ""


_loaded: Optional[Tuple[ModuleType, str]] = None


def load_whisper() -> Tuple[ModuleType, str]:
    """Imports whisper.audio from the upstream source, unmodified: (module,
    note on how). whisper/__init__.py imports the model and decoder, whose
    dependencies (tqdm, tiktoken, numba) may be missing (Debian 12 has no
    tiktoken package); when
    one is missing the package is created from its real location without
    running __init__.py, and `import whisper.audio` then runs audio.py and
    the utils.py it imports (stdlib only) exactly as shipped. Nothing is
    stubbed and no whisper code is copied. Skips (pytest.skip) with the
    reason when the source or torch is absent."""
    global _loaded
    if _loaded is not None:
        return _loaded
    d, why = _upstream_whisper_dir()
    if d is None:
        pytest.skip(why)
    if importlib.util.find_spec("torch") is None:
        pytest.skip("whisper.audio needs torch: apt-get install python3-torch "
                    "(scripts/install-deps.sh --bench)")
    if "whisper" in sys.modules:
        pytest.fail("another `whisper` is already imported (%s)"
                    % sys.modules["whisper"])
    missing = [m for m in ("tqdm", "tiktoken", "numba")
               if importlib.util.find_spec(m) is None]
    spec = importlib.util.spec_from_file_location(
        "whisper", os.path.join(d, "__init__.py"),
        submodule_search_locations=[d])
    assert spec is not None and spec.loader is not None
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["whisper"] = pkg
    if missing:
        note = ("whisper/__init__.py not run (%s not importable); audio.py "
                "and utils.py run unmodified from %s" % (", ".join(missing), d))
    else:
        spec.loader.exec_module(pkg)
        note = "the whole whisper package imported from %s" % d
    _loaded = (importlib.import_module("whisper.audio"), note)
    return _loaded


@pytest.fixture(scope="session")
def whisper_audio() -> ModuleType:
    try:
        module, note = load_whisper()
    except pytest.skip.Exception as e:
        _skip_reasons.append(str(e))
        raise
    print("upstream: " + note)
    return module


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail("%s is needed to make the test signals: apt-get install "
                    "espeak-ng sox (scripts/install-deps.sh)" % name)
    return path


def speak(tmpdir: str, text: str, voice: str, speed: int,
          pitch: int = 50) -> np.ndarray:
    """espeak-ng speech resampled to 16 kHz 16-bit mono by sox, as int16."""
    raw = os.path.join(tmpdir, "espeak-%s-%d-%d.wav" % (voice, speed, pitch))
    out = raw[:-4] + "-16k.wav"
    subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", str(speed), "-p",
                    str(pitch), "-w", raw, text], check=True,
                   capture_output=True)
    subprocess.run([_tool("sox"), raw, "-r", "16000", "-c", "1", "-b", "16",
                    out], check=True, capture_output=True)
    return read_wav_int16(out)


def read_wav_int16(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == \
            (16000, 2, 1), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()


def write_wav_int16(path: str, pcm: np.ndarray) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())


def write_wav_float(path: str, audio: np.ndarray) -> None:
    """IEEE float 32-bit mono 16 kHz WAV (format 3) holding exactly these
    samples. The stdlib wave module writes PCM only, and sox passes samples
    through 32-bit integers (quiet float audio would lose its low bits), so
    the RIFF header is written here."""
    data = np.ascontiguousarray(audio, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)))
        f.write(b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        f.write(b"data" + struct.pack("<I", len(data)) + data)


TEXTS = [
    "Speech recognition on a neural processing unit, measured against the "
    "reference implementation.",
    "She sells sea shells by the sea shore; the shells she sells are surely "
    "sea shells.",
    "Twelve thousand four hundred and six frames per second, give or take.",
]


class Signal:
    """One test signal: float32 audio (full scale 1.0), Whisper's padding,
    and whether it is exactly int16 (then the INT16 wire is tested too)."""

    def __init__(self, name: str, audio: np.ndarray, padding: int = 0,
                 pcm: Optional[np.ndarray] = None) -> None:
        self.name = name
        self.audio = np.ascontiguousarray(audio, dtype=np.float32)
        self.padding = padding
        self.pcm = pcm


@pytest.fixture(scope="session")
def signals(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Signal]:
    d = str(tmp_path_factory.mktemp("signals"))
    voices = [("en-us", 175, 50), ("en-gb+f3", 130, 70),
              ("en-us+m7", 260, 35), ("en-gb-scotland+f5", 200, 60)]
    speech = [speak(d, TEXTS[i % len(TEXTS)], v, s, p)
              for i, (v, s, p) in enumerate(voices)]
    out: Dict[str, Signal] = {}
    for (v, s, _), pcm in zip(voices, speech):
        name = "speech %s %dwpm" % (v, s)
        out[name] = Signal(name, pcm / np.float32(32768), pcm=pcm)
    base = speech[0].astype(np.float32) / 32768
    peak = float(np.max(np.abs(base)))
    out["speech -40 dBFS"] = Signal("speech -40 dBFS",
                                    base * np.float32(0.01 / peak))
    out["speech clipped"] = Signal("speech clipped",
                                   np.clip(base * 6.0, -1.0, 1.0))
    t = np.arange(3 * 16000) / 16000.0
    tones = (0.4 * np.sin(2 * np.pi * 440 * t) +
             0.2 * np.sin(2 * np.pi * 3150 * t) +
             0.1 * np.sin(2 * np.pi * (100 + 2500 * t) * t))
    out["tones + sweep"] = Signal("tones + sweep", tones)
    rng = np.random.default_rng(11)
    out["noise -80 dBFS"] = Signal("noise -80 dBFS",
                                   rng.normal(0, 1e-4, 2 * 16000))
    out["leading silence"] = Signal(
        "leading silence", np.concatenate([np.zeros(2 * 16000), base]))
    out["padded (transcribe)"] = Signal("padded (transcribe)", base,
                                        padding=480000)
    # Ten minutes of concatenated speech in every voice, int16 like a file.
    parts, n = [], 0
    i = 0
    while n < 600 * 16000:
        p = speech[i % len(speech)]
        parts += [p, np.zeros(4000, np.int16)]
        n += p.size + 4000
        i += 1
    long_pcm = np.concatenate(parts)[:600 * 16000]
    out["10 min speech"] = Signal("10 min speech",
                                  long_pcm / np.float32(32768), pcm=long_pcm)
    return out


@pytest.fixture(scope="session")
def npukd_binary() -> str:
    b = os.environ.get("NPUKD", "")
    if not b:
        pytest.fail("set NPUKD to the npukd binary (ctest does)")
    return b


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("log_mel vs openai/whisper audio.py (Whisper's units)")
    header = ("signal", "n_mels", "path", "frames", "max|d|", "mean|d|",
              "std", "corr")
    widths = [max(len(str(r[i])) for r in ROWS + [header])
              for i in range(len(header))]
    for r in [header] + ROWS:
        tr.write_line("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    tr.write_line("bounds: max|d| <= 0.02, mean|d| <= 0.006, corr >= 0.9995 "
                  "where std >= 0.1")


def pytest_sessionfinish(session, exitstatus) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = reporter.stats if reporter is not None else {}
    ran = any(stats.get(k) for k in ("passed", "failed", "error"))
    if _skip_reasons and not ran:
        sys.stdout.write("\nSKIPPED: %s\n" % _skip_reasons[0])
        session.exitstatus = SKIP_CODE
