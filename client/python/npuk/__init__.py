"""npuk: Python client of the npukd NPU kernel daemon.

    import npuk
    with npuk.Client() as c:                      # default unix socket
        feats = c.log_mel_spectrogram(audio)      # whisper's features [80, n]
        print(c.last_timing)
        out = c.infer("passthrough", {"in": blocks})  # any model, by metadata

npuk.log_mel_spectrogram(audio, n_mels, padding, device) is a drop-in for
whisper.audio.log_mel_spectrogram (default socket); npuk.whisper.patch()
makes an unmodified whisper.transcribe() use it.

infer(), models() and model_info() work for every model the daemon serves,
from its ModelMetadata; log_mel_spectrogram, mel and attention are typed
conveniences over one kernel each.

Client is synchronous and thread-safe; AsyncClient has the same methods as
coroutines (grpc.aio). Errors raise npuk.NpukError with the gRPC code and the
daemon's message.
"""

from ._version import __version__
from ._common import NpukError, Timing
from .client import Client
from .aio import AsyncClient
from .features import (audio_to_int16, frame_audio, log_mel_frames,
                       normalize_log_mel, quantize)
from .log_mel import load_pcm16
from .model import ModelInfo, ParamInfo, TensorInfo, random_inputs
from .target import default_socket_path, default_target
from .whisper import log_mel_spectrogram

__all__ = [
    "__version__", "AsyncClient", "Client", "ModelInfo", "NpukError", "ParamInfo",
    "TensorInfo", "Timing", "audio_to_int16", "default_socket_path",
    "default_target", "frame_audio", "load_pcm16", "log_mel_frames",
    "log_mel_spectrogram", "normalize_log_mel",
    "quantize", "random_inputs",
]
