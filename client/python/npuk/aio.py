"""asyncio client (grpc.aio) with the methods of npuk.Client as coroutines.

    async with npuk.AsyncClient() as c:
        feats = await c.log_mel_spectrogram(audio)
"""

import time

import grpc
import numpy as np

from . import _common as c
from . import features
from . import model as m
from ._common import NpukError
from ._proto import grpc_service_pb2 as pb
from ._proto import grpc_service_pb2_grpc as pb_grpc
from ._proto import health_pb2, health_pb2_grpc
from .target import resolve_target

__all__ = ["AsyncClient"]


class AsyncClient:
    """AsyncClient(target=None, timeout=30.0, credentials=None); create it
    inside a running event loop."""

    def __init__(self, target=None, timeout=30.0, credentials=None):
        self.target = resolve_target(target)
        self.timeout = timeout
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(
                self.target, options=c.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.secure_channel(
                self.target, credentials, options=c.CHANNEL_OPTIONS)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.last_timing = None
        self._described = {}

    async def close(self):
        await self._channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _call(self, method, request, timeout):
        try:
            return await method(request, timeout=self.timeout if timeout is None
                                else timeout)
        except grpc.RpcError as e:
            raise c.error_from_rpc(e, self.target) from None

    async def infer(self, model, inputs=None, parameters=None, timeout=None):
        if isinstance(model, pb.ModelInferRequest):
            return await self._infer_request(model, timeout)
        req = m.build_request(await self.model_info(model, timeout), inputs,
                              parameters)
        return m.outputs_of(await self._infer_request(req, timeout))

    async def _infer_request(self, request, timeout):
        start = time.perf_counter()
        resp = await self._call(self._stub.ModelInfer, request, timeout)
        self.last_timing = c.timing_of(resp,
                                       (time.perf_counter() - start) * 1e6)
        return resp

    async def models(self, timeout=None) -> list:
        idx = await self._call(self._stub.RepositoryIndex,
                               pb.RepositoryIndexRequest(), timeout)
        return [{"name": x.name, "state": x.state, "reason": x.reason}
                for x in idx.models]

    async def model_info(self, model, timeout=None) -> m.ModelInfo:
        if model not in self._described:
            meta = await self._call(self._stub.ModelMetadata,
                                    pb.ModelMetadataRequest(name=model),
                                    timeout)
            config = await self._call(self._stub.ModelConfig,
                                      pb.ModelConfigRequest(name=model),
                                      timeout)
            self._described[model] = m.ModelInfo.from_proto(meta, config)
        return self._described[model]

    async def mel(self, frames, timeout=None) -> np.ndarray:
        req = c.mel_request(frames)
        n = req.inputs[0].shape[0]
        return c.single_output(await self._infer_request(req, timeout),
                               (n, features.N_MELS))

    async def attention_int8(self, q, k, v, score_scale=0.125, timeout=None):
        req = c.attention_request(q, k, v, score_scale)
        return c.single_output(await self._infer_request(req, timeout),
                               np.shape(q))

    async def attention(self, q, k, v, timeout=None) -> np.ndarray:
        (qi, sq), (ki, sk), (vi, sv) = map(features.quantize, (q, k, v))
        out = await self.attention_int8(qi, ki, vi, sq * sk / 8.0, timeout)
        return out.astype(np.float32) * np.float32(sv)

    async def log_mel_spectrogram(self, audio, n_mels=80, padding=0,
                                  timeout=None) -> np.ndarray:
        x = c.whisper_audio(audio, n_mels, padding)
        frames = features.frame_audio(x)
        try:
            q = await self.mel(frames, timeout)
        except NpukError as e:
            raise c.too_many_frames_hint(e, len(frames),
                                         x.size / features.SAMPLE_RATE) from None
        return features.normalize_log_mel(q)

    async def health(self, model="", timeout=None) -> str:
        resp = await self._call(self._health.Check,
                                health_pb2.HealthCheckRequest(service=model),
                                timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def stats(self, model="", timeout=None) -> dict:
        return c.stats_dict(await self._call(
            self._stub.ModelStatistics, pb.ModelStatisticsRequest(name=model),
            timeout))
