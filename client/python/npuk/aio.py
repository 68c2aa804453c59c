"""asyncio client (grpc.aio) with the methods of npuk.Client as coroutines.

    async with npuk.AsyncClient() as c:
        feats = await c.log_mel_spectrogram(audio)
"""

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
from ._common import NpukError
from ._proto import grpc_service_pb2 as pb
from ._proto import grpc_service_pb2_grpc as pb_grpc
from ._proto import health_pb2, health_pb2_grpc
from .target import resolve_target

__all__ = ["AsyncClient"]


class AsyncClient:
    """AsyncClient(target=None, timeout=30.0, credentials=None,
    shared_memory=None); create it inside a running event loop.

    shared_memory: as for npuk.Client (None: on for a unix socket or
    loopback target unless NPUK_SHM=0; False: never), through
    npuk.shm.AsyncShmTransport, safe for any number of concurrent
    coroutines. close() unregisters and removes the regions."""

    def __init__(self, target: Optional[str] = None,
                 timeout: Optional[float] = 30.0,
                 credentials: Optional[grpc.ChannelCredentials] = None,
                 shared_memory: Optional[bool] = None) -> None:
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
        if shared_memory is None:
            shared_memory = (shm_transport.enabled_by_env() and
                             shm_transport.is_local_target(self.target))
        self._shm = (shm_transport.AsyncShmTransport(self._stub, timeout)
                     if shared_memory else None)

    async def close(self) -> None:
        try:
            if self._shm is not None:
                await self._shm.close()
        finally:
            await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _call(self, method, request, timeout):
        try:
            return await method(request, timeout=self.timeout if timeout is None
                                else timeout)
        except grpc.RpcError as e:
            raise c.error_from_rpc(e, self.target) from None

    async def infer(self, model: str,
                    inputs: Optional[Mapping[str, ArrayLike]] = None,
                    parameters: Optional[Mapping[str, Any]] = None,
                    timeout: Optional[float] = None) -> Dict[str, np.ndarray]:
        if isinstance(model, pb.ModelInferRequest):
            return await self._infer_request(model, timeout)
        req = m.build_request(await self.model_info(model, timeout), inputs,
                              parameters)
        return m.outputs_of(await self._infer_request(req, timeout))

    async def _infer_request(self, request, timeout):
        start = time.perf_counter()
        if self._shm is not None:
            t = self.timeout if timeout is None else timeout
            try:
                resp = await self._shm.infer(
                    request, lambda r: self._stub.ModelInfer(r, timeout=t))
            except grpc.RpcError as e:
                raise c.error_from_rpc(e, self.target) from None
        else:
            resp = await self._call(self._stub.ModelInfer, request, timeout)
        self.last_timing = c.timing_of(resp,
                                       (time.perf_counter() - start) * 1e6)
        return resp

    async def models(self, timeout: Optional[float] = None
                     ) -> List[Dict[str, str]]:
        idx = await self._call(self._stub.RepositoryIndex,
                               pb.RepositoryIndexRequest(), timeout)
        return [{"name": x.name, "state": x.state, "reason": x.reason}
                for x in idx.models]

    async def model_info(self, model: str,
                         timeout: Optional[float] = None) -> m.ModelInfo:
        if model not in self._described:
            meta = await self._call(self._stub.ModelMetadata,
                                    pb.ModelMetadataRequest(name=model),
                                    timeout)
            config = await self._call(self._stub.ModelConfig,
                                      pb.ModelConfigRequest(name=model),
                                      timeout)
            self._described[model] = m.ModelInfo.from_proto(meta, config)
        return self._described[model]

    async def mel(self, frames: ArrayLike,
                  timeout: Optional[float] = None) -> np.ndarray:
        req = c.mel_request(frames)
        n = req.inputs[0].shape[0]
        return c.single_output(await self._infer_request(req, timeout),
                               (n, features.N_MELS))

    async def attention_int8(self, q: ArrayLike,
                             k: ArrayLike, v: ArrayLike,
                             score_scale: float = 0.125,
                             timeout: Optional[float] = None, *,
                             output_scale: float = 1.0,
                             causal: bool = False) -> np.ndarray:
        """Client.attention_int8 as a coroutine."""
        req = att.int8_request(q, k, v, score_scale, output_scale, causal)
        try:
            resp = await self._infer_request(req, timeout)
        except NpukError as e:
            raise att.explain(e) from None
        return c.single_output(resp, att.out_shape(req))

    async def attention(self, q: Any, k: Any, v: Any, causal: bool = False,
                        *, output_scale: Optional[float] = None,
                        timeout: Optional[float] = None) -> Any:
        """Client.attention as a coroutine (the quantisation and the
        output-scale estimate run in the calling thread)."""
        sent = att.float_request(q, k, v, causal, output_scale)
        try:
            resp = await self._infer_request(sent.request, timeout)
        except NpukError as e:
            raise att.explain(e) from None
        return att.to_output(
            c.single_output(resp, att.out_shape(sent.request)), sent)

    async def log_mel_spectrogram(self, audio: lm.AudioLike,
                                  n_mels: int = 80, padding: int = 0,
                                  device: lm.Device = None, *,
                                  timeout: Optional[float] = None,
                                  as_numpy: bool = False) -> Any:
        """Client.log_mel_spectrogram as a coroutine (a path is decoded in
        the calling thread)."""
        req, frames, input_device = lm.build_request(audio, n_mels, padding)
        try:
            resp = await self._infer_request(req, timeout)
        except NpukError as e:
            raise lm.explain(e, req) from None
        return lm.to_output(lm.features_of(resp, int(n_mels), frames), device,
                            input_device, as_numpy)

    async def health(self, model: str = "",
                     timeout: Optional[float] = None) -> str:
        resp = await self._call(self._health.Check,
                                health_pb2.HealthCheckRequest(service=model),
                                timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)

    async def stats(self, model: str = "", timeout: Optional[float] = None
                    ) -> Dict[str, Dict[str, Any]]:
        return c.stats_dict(await self._call(
            self._stub.ModelStatistics, pb.ModelStatisticsRequest(name=model),
            timeout))
