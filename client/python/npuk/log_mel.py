"""Whisper's log-mel features from npukd's `log_mel` model.

The daemon does everything whisper.audio.log_mel_spectrogram does (reflect
padding, windows of 400 at hop 160, the 80- or 128-band filterbank, log10,
clamp to max - 8, (x + 4) / 4); this module turns what whisper's function
accepts into one `log_mel` request and the answer into what it returns:

    audio    a path (decoded like whisper: ffmpeg, or a 16 kHz 16-bit mono WAV
             read with the stdlib `wave` module when ffmpeg is absent), a
             numpy array or torch tensor of 16 kHz mono samples (float, full
             scale 1.0, sent as FP32; int16 PCM sent as INT16), or bytes of
             s16le PCM
    returns  float32 [n_mels, (S + padding) // 160]: a torch.Tensor when
             torch is importable (on `device`, else the input tensor's
             device), else a numpy array

Client.log_mel_spectrogram, AsyncClient.log_mel_spectrogram and
npuk.whisper.log_mel_spectrogram share it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import wave
from typing import TYPE_CHECKING, Any, Optional, Tuple, Union

import grpc
import numpy as np

from ._common import NpukError
from ._proto import grpc_service_pb2 as pb

if TYPE_CHECKING:
    import torch

MODEL = "log_mel"
SAMPLE_RATE = 16000
HOP_LENGTH = 160
N_SAMPLES = 30 * SAMPLE_RATE  # transcribe()'s padding: one 30 s window
SUPPORTED_N_MELS = (80, 128)

# What log_mel_spectrogram takes: a path, samples, or s16le PCM bytes.
AudioLike = Union[str, os.PathLike, np.ndarray, bytes, bytearray, memoryview,
                  "torch.Tensor"]
Device = Union[str, "torch.device", None]


def frames_for(samples: int, padding: int = 0) -> int:
    """Feature frames for `samples` samples and `padding` trailing zeros."""
    return (samples + padding) // HOP_LENGTH


def _ffmpeg_pcm16(path: str) -> np.ndarray:
    """Decodes, downmixes and resamples like whisper.audio.load_audio."""
    cmd = ["ffmpeg", "-nostdin", "-threads", "0", "-i", path, "-f", "s16le",
           "-ac", "1", "-acodec", "pcm_s16le", "-ar", str(SAMPLE_RATE), "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, check=True).stdout
    except subprocess.CalledProcessError as e:
        tail = e.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError("ffmpeg could not decode %s: %s"
                           % (path, " | ".join(tail))) from None
    return np.frombuffer(out, dtype="<i2")


def _wav_pcm16(path: str) -> Optional[np.ndarray]:
    """A 16 kHz 16-bit mono PCM WAV as int16 (exactly the samples ffmpeg
    would produce), or None when the file is not one."""
    try:
        with wave.open(path, "rb") as w:
            if (w.getframerate(), w.getsampwidth(), w.getnchannels()) != \
                    (SAMPLE_RATE, 2, 1):
                return None
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    except (wave.Error, EOFError):
        return None


def load_pcm16(path: Union[str, os.PathLike]) -> np.ndarray:
    """An audio file as 16 kHz mono int16 PCM, the samples whisper's
    load_audio makes (its float audio is these / 32768)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError("no such audio file: %s" % path)
    pcm = _wav_pcm16(path)
    if pcm is not None:
        return pcm
    if shutil.which("ffmpeg") is None:
        raise RuntimeError(
            "%s is not a 16 kHz 16-bit mono PCM WAV, and decoding anything "
            "else needs the ffmpeg CLI (as whisper does): apt-get install "
            "ffmpeg, or convert it first: sox IN -r 16000 -c 1 -b 16 OUT.wav"
            % path)
    return _ffmpeg_pcm16(path)


def _is_torch_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _samples(audio: AudioLike) -> Tuple[np.ndarray, Any]:
    """(1-D int16 or float32 samples, device of an input tensor or None)."""
    device = None
    if isinstance(audio, (str, os.PathLike)):
        a = load_pcm16(audio)
    elif isinstance(audio, (bytes, bytearray, memoryview)):
        raw = bytes(audio)
        if len(raw) % 2:
            raise ValueError(
                "raw PCM has %d bytes, an odd count; int16 PCM is 2 bytes a "
                "sample (s16le): check that the buffer is whole" % len(raw))
        a = np.frombuffer(raw, dtype="<i2")
    elif _is_torch_tensor(audio):
        device = audio.device
        t = audio.detach()
        if t.is_floating_point() and t.dtype != sys.modules["torch"].float32:
            t = t.float()
        a = t.cpu().numpy()
    else:
        a = np.asarray(audio)
    if a.dtype == np.int16:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32, copy=False)
    else:
        raise TypeError(
            "audio samples must be float (full scale 1.0) or int16 PCM; got "
            "dtype %s: convert with audio.astype(np.float32) / scale"
            % a.dtype)
    if a.ndim != 1:
        raise ValueError(
            "audio must be mono 16 kHz samples of shape [S]; got shape %s: "
            "pass one channel (e.g. audio.mean(axis=0)) and one clip per call"
            % (tuple(a.shape),))
    return a, device


def check_args(n_mels: int, padding: int) -> None:
    if isinstance(n_mels, bool) or not isinstance(n_mels, (int, np.integer)) \
            or int(n_mels) not in SUPPORTED_N_MELS:
        raise ValueError("n_mels must be 80 or 128 (Whisper's filterbanks; "
                         "128 for large-v3); got %r" % (n_mels,))
    if isinstance(padding, bool) or \
            not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError("padding must be an int >= 0 (trailing zero "
                         "samples, e.g. whisper.audio.N_SAMPLES); got %r"
                         % (padding,))


def build_request(audio: AudioLike, n_mels: int = 80, padding: int = 0
                  ) -> Tuple[pb.ModelInferRequest, int, Any]:
    """The `log_mel` request for `audio`: (request, frames, input device).
    Bad input raises ValueError/TypeError naming what is wrong."""
    check_args(n_mels, padding)
    a, device = _samples(audio)
    if a.size == 0:
        raise ValueError("audio is empty (S = 0 samples); log_mel needs at "
                         "least one sample of 16 kHz audio")
    if a.dtype == np.float32:
        bad = ~np.isfinite(a)
        if bad.any():
            first = int(np.argmax(bad))
            raise ValueError(
                "audio has %d NaN or infinite samples (the first at index %d, "
                "%r); log_mel takes finite samples: clean the input, e.g. "
                "np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)"
                % (int(bad.sum()), first, float(a[first])))
        datatype, wire = "FP32", a.astype("<f4", copy=False)
    else:
        datatype, wire = "INT16", a.astype("<i2", copy=False)
    req = pb.ModelInferRequest(model_name=MODEL)
    t = req.inputs.add()
    t.name = "audio"
    t.datatype = datatype
    t.shape.append(int(a.size))
    req.raw_input_contents.append(np.ascontiguousarray(wire).tobytes())
    req.parameters["n_mels"].int64_param = int(n_mels)
    req.parameters["padding"].int64_param = int(padding)
    return req, frames_for(int(a.size), int(padding)), device


def features_of(resp: pb.ModelInferResponse, n_mels: int,
                frames: int) -> np.ndarray:
    """The `features` output as float32 [n_mels, frames], sizes checked."""
    for i, o in enumerate(resp.outputs):
        if o.name != "features":
            continue
        want = n_mels * frames * 4
        # Each read of a protobuf bytes field copies it: read it once.
        raw = (resp.raw_output_contents[i]
               if i < len(resp.raw_output_contents) else b"")
        if len(raw) != want or list(o.shape) != [n_mels, frames]:
            got = len(raw)
            raise NpukError(
                grpc.StatusCode.INTERNAL,
                "log_mel returned features %s (%d bytes); expected FP32 "
                "[%d, %d] (%d bytes)" % (list(o.shape), got, n_mels, frames,
                                         want))
        # frombuffer of bytes is read-only; the copy makes it the caller's.
        return np.frombuffer(raw, dtype="<f4") \
            .reshape(n_mels, frames).astype(np.float32, copy=True)
    raise NpukError(grpc.StatusCode.INTERNAL,
                    "log_mel answered without a `features` output (outputs: "
                    "%s)" % [o.name for o in resp.outputs][:8])


def explain(e: NpukError, req: pb.ModelInferRequest) -> NpukError:
    """Adds what to do to a daemon error about a log_mel request."""
    nbytes = len(req.raw_input_contents[0]) if req.raw_input_contents else 0
    samples = req.inputs[0].shape[0] if req.inputs else 0
    # gRPC's own refusal of a message over the limit (the daemon's log_mel
    # already says what to do when the features would not fit).
    if e.code == grpc.StatusCode.RESOURCE_EXHAUSTED and \
            "message" in e.message.lower() and \
            not e.message.startswith(MODEL + ":"):
        return NpukError(e.code, (
            "%s (this request carries %.1f MB of %s audio, %.1f s; npukd takes "
            "at most its max_message_bytes per message, 64 MiB by default: "
            "send int16 PCM (half the bytes of float32), split the audio, or "
            "raise max_message_bytes in the daemon's config)")
            % (e.message, nbytes / 1e6, req.inputs[0].datatype,
               samples / SAMPLE_RATE))
    if e.code == grpc.StatusCode.NOT_FOUND and MODEL in e.message:
        return NpukError(e.code, "%s (this npukd has no log_mel model: "
                         "upgrade it)" % e.message)
    return e


def torch_or_none() -> Any:
    """torch when it is importable, else None (imported on first use)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return torch
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def to_output(features: np.ndarray, device: Device, input_device: Any,
              as_numpy: bool) -> Any:
    """What whisper returns: a torch.Tensor when torch is importable (on
    `device`, else on the input tensor's device), else numpy."""
    if as_numpy:
        return features
    torch = torch_or_none()
    if torch is None:
        return features
    t = torch.from_numpy(features)
    target = device if device is not None else input_device
    if target is not None and torch.device(target).type != "cpu":
        t = t.to(target)
    return t
