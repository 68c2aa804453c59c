"""Host-side halves of the daemon's kernels, numpy only.

log-mel: framing before the `mel` kernel (hop 160, reflect padding as
torch.stft(center=True), last frame dropped) and normalisation after it
(log10 P = q/16 - 4, clamp to max - 8, (x + 4) / 4), which together reproduce
whisper.audio.log_mel_spectrogram. attention: per-tensor int8 quantisation.
"""

from typing import Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
TILE = 64


def audio_to_int16(audio: ArrayLike) -> np.ndarray:
    """Full scale 1.0 -> int16: round(clip(x, -1, 32767/32768) * 32768)."""
    x = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 32767.0 / 32768.0)
    return np.rint(x * 32768.0).astype(np.int16)


def log_mel_frames(samples: int) -> int:
    """Frames Whisper keeps for a clip: samples // 160 (one STFT frame fewer)."""
    return samples // HOP_LENGTH


def frame_audio(audio: ArrayLike) -> np.ndarray:
    """16 kHz mono float audio -> int16 frames [samples // 160, 400]."""
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    pad = N_FFT // 2
    if x.size <= pad:
        raise ValueError("audio has %d samples; the spectrogram needs more than "
                         "%d (12.5 ms at 16 kHz) to reflect-pad like torch.stft"
                         % (x.size, pad))
    padded = np.pad(audio_to_int16(x), pad, mode="reflect")
    n = log_mel_frames(x.size)
    windows = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)
    return np.ascontiguousarray(windows[: n * HOP_LENGTH : HOP_LENGTH])


def normalize_log_mel(q: ArrayLike) -> np.ndarray:
    """The mel kernel's int8 [n, 80] -> Whisper's float32 features [80, n]."""
    log10 = np.asarray(q, dtype=np.float32) / 16.0 - 4.0
    log10 = np.maximum(log10, log10.max() - 8.0)
    return np.ascontiguousarray(((log10 + 4.0) / 4.0).T, dtype=np.float32)


def quantize(x: ArrayLike,
             scale: Optional[float] = None) -> Tuple[np.ndarray, float]:
    """Per-tensor symmetric int8: returns (int8 array, scale), x ~= scale * q,
    scale = max|x| / 127 (1.0 for an all-zero tensor) unless given; values
    beyond 127 steps of a given scale are clipped."""
    x = np.asarray(x, dtype=np.float32)
    if scale is None:
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        scale = peak / 127.0 if peak > 0 else 1.0
    q = np.clip(np.rint(x / scale), -127, 127).astype(np.int8)
    return q, float(scale)
