"""Whisper's features from npukd, for an unmodified openai-whisper.

    import whisper, npuk.whisper
    npuk.whisper.patch()                 # or patch(target="unix:/run/x.sock")
    model = whisper.load_model("base")
    print(whisper.transcribe(model, "speech.mp3")["text"])
    npuk.whisper.unpatch()               # whisper's own function again

patch() replaces whisper.audio.log_mel_spectrogram, and every loaded whisper
module's copy of that name (whisper.transcribe imports it by name, and
`whisper` re-exports it), with log_mel_spectrogram below: same signature,
same result (torch.Tensor [n_mels, n_frames]), computed by the daemon's
`log_mel` model. A whisper module imported after patch() picks the patched
function up from whisper.audio. Everything else in whisper is untouched.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple

from . import log_mel as lm
from .client import Client

__all__ = ["log_mel_spectrogram", "patch", "patched", "unpatch"]

_lock = threading.Lock()
_client: Optional[Client] = None
_owns_client = False
# (module, original function) for each module patch() changed.
_replaced: List[Tuple[ModuleType, Callable[..., Any]]] = []


def _default_client() -> Client:
    global _client, _owns_client
    with _lock:
        if _client is None:
            _client = Client()
            _owns_client = True
        return _client


def log_mel_spectrogram(audio: lm.AudioLike, n_mels: int = 80,
                        padding: int = 0, device: lm.Device = None) -> Any:
    """whisper.audio.log_mel_spectrogram computed by npukd: `audio` a path,
    numpy array or torch tensor of 16 kHz mono samples; returns float32
    [n_mels, (S + padding) // 160], a torch.Tensor when torch is importable.
    Uses the client given to patch(), else one to the default socket."""
    return _default_client().log_mel_spectrogram(audio, n_mels, padding,
                                                 device)


def _whisper_modules() -> List[ModuleType]:
    return [m for name, m in list(sys.modules.items())
            if isinstance(m, ModuleType) and
            (name == "whisper" or name.startswith("whisper."))]


def patch(client: Optional[Client] = None, target: Optional[str] = None,
          timeout: Optional[float] = 30.0) -> None:
    """Makes whisper take its log-mel features from npukd. `client` is used
    as is; else a Client(target, timeout) is made (target None: the default
    socket). Calling it again switches the client. Raises ImportError when
    whisper.audio cannot be imported."""
    global _client, _owns_client
    try:
        audio_module = importlib.import_module("whisper.audio")
    except ImportError as e:
        raise ImportError("npuk.whisper.patch() needs openai-whisper "
                          "importable (whisper.audio): %s" % e) from e
    with _lock:
        old, old_owned = _client, _owns_client
        _client = client if client is not None else Client(target, timeout)
        _owns_client = client is None
        if _replaced:
            original = _replaced[0][1]
        else:
            original = audio_module.log_mel_spectrogram
        for m in _whisper_modules():
            current = getattr(m, "log_mel_spectrogram", None)
            if current is original:
                m.log_mel_spectrogram = log_mel_spectrogram
                _replaced.append((m, original))
    if old_owned and old is not None and old is not _client:
        old.close()


def patched() -> bool:
    """Whether whisper.audio.log_mel_spectrogram is npukd's right now."""
    m = sys.modules.get("whisper.audio")
    return m is not None and \
        getattr(m, "log_mel_spectrogram", None) is log_mel_spectrogram


def unpatch() -> None:
    """Puts whisper's own log_mel_spectrogram back wherever patch() replaced
    it (modules imported while patched included) and closes the client
    patch() made. Does nothing when not patched."""
    global _client, _owns_client
    with _lock:
        for m, original in _replaced:
            if getattr(m, "log_mel_spectrogram", None) is log_mel_spectrogram:
                m.log_mel_spectrogram = original
        if _replaced:
            original = _replaced[0][1]
            for m in _whisper_modules():
                if getattr(m, "log_mel_spectrogram", None) is \
                        log_mel_spectrogram:
                    m.log_mel_spectrogram = original
        _replaced.clear()
        old, owned = _client, _owns_client
        _client, _owns_client = None, False
    if owned and old is not None:
        old.close()
