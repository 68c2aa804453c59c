"""Synchronous client. One Client holds one gRPC channel and may be shared by
threads; last_timing is per Client (the most recent call from any thread)."""

import threading
import time

import grpc
import numpy as np

from . import _common as c
from . import features
from . import model as m
from ._common import NpukError, Timing
from ._proto import grpc_service_pb2 as pb
from ._proto import grpc_service_pb2_grpc as pb_grpc
from ._proto import health_pb2, health_pb2_grpc
from .target import resolve_target

__all__ = ["Client", "NpukError", "Timing"]


class Client:
    """Client(target=None, timeout=30.0, credentials=None).

    target: "unix:PATH" or "HOST:PORT"; None means the daemon's default socket.
    timeout: seconds per call (None: no deadline). credentials: a
    grpc.ChannelCredentials for TLS; None is plaintext.
    """

    def __init__(self, target=None, timeout=30.0, credentials=None):
        self.target = resolve_target(target)
        self.timeout = timeout
        if credentials is None:
            self._channel = grpc.insecure_channel(self.target,
                                                  options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(self.target, credentials,
                                                options=c.CHANNEL_OPTIONS)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.last_timing = None
        self._lock = threading.Lock()
        self._described = {}

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, timeout):
        try:
            return method(request, timeout=self.timeout if timeout is None
                          else timeout)
        except grpc.RpcError as e:
            raise c.error_from_rpc(e, self.target) from None

    def infer(self, model, inputs=None, parameters=None, timeout=None):
        """Any model the daemon serves: `inputs` {name: array [N, ...]} of the
        model's dtypes and shapes (from its metadata, see model_info), and
        `parameters` {name: value} typed as the model declares them. Returns
        {output name: numpy array}. Bad inputs raise ValueError before any
        call.

        Passing a ModelInferRequest instead of a model name sends it as is
        and returns the ModelInferResponse."""
        if isinstance(model, pb.ModelInferRequest):
            return self._infer_request(model, timeout)
        req = m.build_request(self.model_info(model, timeout), inputs,
                              parameters)
        return m.outputs_of(self._infer_request(req, timeout))

    def _infer_request(self, request, timeout):
        start = time.perf_counter()
        resp = self._call(self._stub.ModelInfer, request, timeout)
        self.last_timing = c.timing_of(resp,
                                       (time.perf_counter() - start) * 1e6)
        return resp

    def models(self, timeout=None) -> list:
        """The models the daemon serves: [{"name", "state", "reason"}]."""
        idx = self._call(self._stub.RepositoryIndex,
                         pb.RepositoryIndexRequest(), timeout)
        return [{"name": x.name, "state": x.state, "reason": x.reason}
                for x in idx.models]

    def model_info(self, model, timeout=None) -> m.ModelInfo:
        """What `model` takes and returns (ModelMetadata + ModelConfig), read
        once per Client: a running daemon's models keep their tensors."""
        with self._lock:
            if model in self._described:
                return self._described[model]
        meta = self._call(self._stub.ModelMetadata,
                          pb.ModelMetadataRequest(name=model), timeout)
        config = self._call(self._stub.ModelConfig,
                            pb.ModelConfigRequest(name=model), timeout)
        info = m.ModelInfo.from_proto(meta, config)
        with self._lock:
            self._described[model] = info
        return info

    def mel(self, frames, timeout=None) -> np.ndarray:
        """int16 frames [N, 400] -> int8 log-mel [N, 80], log10 P ~ q/16 - 4."""
        req = c.mel_request(frames)
        n = req.inputs[0].shape[0]
        return c.single_output(self._infer_request(req, timeout),
                               (n, features.N_MELS))

    def attention_int8(self, q, k, v, score_scale=0.125,
                       timeout=None) -> np.ndarray:
        """int8 [N, 64, 64] each -> int8 softmax(q k^T * score_scale) v."""
        req = c.attention_request(q, k, v, score_scale)
        return c.single_output(self._infer_request(req, timeout), np.shape(q))

    def attention(self, q, k, v, timeout=None) -> np.ndarray:
        """float32 [N, 64, 64] -> float32 softmax(Q K^T / 8) V, through int8
        with per-tensor scales max|x|/127."""
        (qi, sq), (ki, sk), (vi, sv) = map(features.quantize, (q, k, v))
        out = self.attention_int8(qi, ki, vi, sq * sk / 8.0, timeout)
        return out.astype(np.float32) * np.float32(sv)

    def log_mel_spectrogram(self, audio, n_mels=80, padding=0,
                            timeout=None) -> np.ndarray:
        """Drop-in for whisper.audio.log_mel_spectrogram: 16 kHz mono float32
        audio (array, tensor or WAV path) -> float32 [80, n_frames], computed
        in one mel request (a 30 s clip is 3000 frames). Returns numpy."""
        x = c.whisper_audio(audio, n_mels, padding)
        frames = features.frame_audio(x)
        try:
            q = self.mel(frames, timeout)
        except NpukError as e:
            raise c.too_many_frames_hint(e, len(frames),
                                         x.size / features.SAMPLE_RATE) from None
        return features.normalize_log_mel(q)

    def health(self, model="", timeout=None) -> str:
        """grpc.health.v1 status name of the server ("") or a model:
        "SERVING", "NOT_SERVING", ..."""
        resp = self._call(self._health.Check,
                          health_pb2.HealthCheckRequest(service=model), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def stats(self, model="", timeout=None) -> dict:
        """Per-model statistics: {name: {inference_count, execution_count,
        success, fail, mean_batch, mean_queue_us, mean_compute_us, ...}}."""
        return c.stats_dict(self._call(self._stub.ModelStatistics,
                                       pb.ModelStatisticsRequest(name=model),
                                       timeout))
