"""Synchronous client. One Client holds one gRPC channel and may be shared by
threads; last_timing is per Client (the most recent call from any thread)."""

import threading
import time
from typing import Any, Dict, List, Mapping, Optional

import grpc
import numpy as np
from numpy.typing import ArrayLike

from . import _common as c
from . import attention as att
from . import features
from . import log_mel as lm
from . import model as m
from . import shm as shm_transport
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
    shared_memory: pass tensors through system shared memory (npuk.shm);
    None (default) uses it when the target is a unix socket or loopback
    address and NPUK_SHM is not 0, falling back to plain gRPC when the
    daemon cannot use it. False never uses it.
    """

    def __init__(self, target: Optional[str] = None,
                 timeout: Optional[float] = 30.0,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 shared_memory: Optional[bool] = None) -> None:
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
        if shared_memory is None:
            shared_memory = (shm_transport.enabled_by_env() and
                             shm_transport.is_local_target(self.target))
        self._shm = (shm_transport.ShmTransport(self._stub, timeout)
                     if shared_memory else None)

    def close(self) -> None:
        try:
            if self._shm is not None:
                self._shm.close()
        finally:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, method, request, timeout):
        try:
            return method(request, timeout=self.timeout if timeout is None
                          else timeout)
        except grpc.RpcError as e:
            raise c.error_from_rpc(e, self.target) from None

    def infer(self, model: str,
              inputs: Optional[Mapping[str, ArrayLike]] = None,
              parameters: Optional[Mapping[str, Any]] = None,
              timeout: Optional[float] = None) -> Dict[str, np.ndarray]:
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
        if self._shm is not None:
            t = self.timeout if timeout is None else timeout
            try:
                resp = self._shm.infer(
                    request, lambda r: self._stub.ModelInfer(r, timeout=t))
            except grpc.RpcError as e:
                raise c.error_from_rpc(e, self.target) from None
        else:
            resp = self._call(self._stub.ModelInfer, request, timeout)
        self.last_timing = c.timing_of(resp,
                                       (time.perf_counter() - start) * 1e6)
        return resp

    def models(self, timeout: Optional[float] = None) -> List[Dict[str, str]]:
        """The models the daemon serves: [{"name", "state", "reason"}]."""
        idx = self._call(self._stub.RepositoryIndex,
                         pb.RepositoryIndexRequest(), timeout)
        return [{"name": x.name, "state": x.state, "reason": x.reason}
                for x in idx.models]

    def model_info(self, model: str,
                   timeout: Optional[float] = None) -> m.ModelInfo:
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

    def mel(self, frames: ArrayLike,
            timeout: Optional[float] = None) -> np.ndarray:
        """int16 frames [N, 400] -> int8 log-mel [N, 80], log10 P ~ q/16 - 4."""
        req = c.mel_request(frames)
        n = req.inputs[0].shape[0]
        return c.single_output(self._infer_request(req, timeout),
                               (n, features.N_MELS))

    def attention_int8(self, q: ArrayLike, k: ArrayLike,
                       v: ArrayLike, score_scale: float = 0.125,
                       timeout: Optional[float] = None, *,
                       output_scale: float = 1.0,
                       causal: bool = False) -> np.ndarray:
        """int8 q [N, Lq, 64], k and v [N, Lk, 64] -> int8 [N, Lq, 64],
        sat8(round(softmax(q k^T * score_scale) v / output_scale)); causal:
        query i sees keys j <= i + Lk - Lq. output_scale and causal are sent
        only when not the defaults, so [N, 64, 64] calls without them work
        with daemons from before sequence attention."""
        req = att.int8_request(q, k, v, score_scale, output_scale, causal)
        try:
            resp = self._infer_request(req, timeout)
        except NpukError as e:
            raise att.explain(e) from None
        return c.single_output(resp, att.out_shape(req))

    def attention(self, q: Any, k: Any, v: Any, causal: bool = False, *,
                  output_scale: Optional[float] = None,
                  timeout: Optional[float] = None) -> Any:
        """softmax(Q K^T / 8) V of float tensors (numpy or torch) through
        npukd's int8 attention: q [B, H, Lq, 64] or [N, Lq, 64], k and v
        of the same heads and Lk tokens (Lq may differ from Lk; 1 <= L <=
        4096); causal: query i sees keys j <= i + Lk - Lq (Lq <= Lk, a
        decoder's key/value cache). Returns float32 with q's shape, a torch
        tensor on the input's device when an input is one, else numpy.

        Each tensor is quantised per tensor (scale max|x|/127), score_scale
        = s_q s_k / 8, and the result is out * s_v * output_scale. When
        output_scale is None it is min(1, 1.1 P / max|v|), P the peak of
        the float result estimated by exact float softmax on at most 64
        evenly spaced query rows per head (under causal half of them
        geometrically spaced from row 0; all rows when there are at most
        64), clamped to [2^-16, 1]: output_scale 1 never saturates, smaller
        ones give long, averaging rows their int8 precision back
        (npuk.attention has the details). Bad shapes raise ValueError
        saying what to send instead."""
        sent = att.float_request(q, k, v, causal, output_scale)
        try:
            resp = self._infer_request(sent.request, timeout)
        except NpukError as e:
            raise att.explain(e) from None
        return att.to_output(
            c.single_output(resp, att.out_shape(sent.request)), sent)

    def log_mel_spectrogram(self, audio: lm.AudioLike, n_mels: int = 80,
                            padding: int = 0, device: lm.Device = None, *,
                            timeout: Optional[float] = None,
                            as_numpy: bool = False) -> Any:
        """whisper.audio.log_mel_spectrogram computed by npukd, in one
        `log_mel` request of any length up to the daemon's message limit.
        Takes what whisper's takes (a path, numpy array or torch tensor of
        16 kHz mono samples; int16 PCM and s16le bytes too) and returns what
        it returns: float32 [n_mels, (S + padding) // 160], a torch.Tensor
        when torch is importable (numpy with as_numpy=True or without torch).
        n_mels is 80 or 128; padding appends zero samples, as whisper's."""
        req, frames, input_device = lm.build_request(audio, n_mels, padding)
        try:
            resp = self._infer_request(req, timeout)
        except NpukError as e:
            raise lm.explain(e, req) from None
        return lm.to_output(lm.features_of(resp, int(n_mels), frames), device,
                            input_device, as_numpy)

    def health(self, model: str = "",
               timeout: Optional[float] = None) -> str:
        """grpc.health.v1 status name of the server ("") or a model:
        "SERVING", "NOT_SERVING", ..."""
        resp = self._call(self._health.Check,
                          health_pb2.HealthCheckRequest(service=model), timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    def stats(self, model: str = "",
              timeout: Optional[float] = None) -> Dict[str, Dict[str, Any]]:
        """Per-model statistics: {name: {inference_count, execution_count,
        success, fail, mean_batch, mean_queue_us, mean_compute_us, ...}}."""
        return c.stats_dict(self._call(self._stub.ModelStatistics,
                                       pb.ModelStatisticsRequest(name=model),
                                       timeout))
