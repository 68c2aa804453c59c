"""Request building and response parsing shared by Client and AsyncClient."""

from typing import Any, Dict, NamedTuple, Tuple

import grpc
import numpy as np
from numpy.typing import ArrayLike

from . import features
from ._proto import grpc_service_pb2 as pb

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
]


class Timing(NamedTuple):
    """What the daemon reported about one inference, plus the round trip."""
    queue_us: int  # waiting for a batch to start
    compute_us: int  # the device run the request rode in
    server_us: int  # received -> response ready
    batch_frames: int  # frames (tiles) in that device run
    backend: str  # cpu, npu-sim or xrt
    round_trip_us: float  # measured by the client


class NpukError(Exception):
    """A failed call: `code` is the grpc.StatusCode, `message` the daemon's
    explanation (INVALID_ARGUMENT bad input, NOT_FOUND unknown model,
    RESOURCE_EXHAUSTED queue full, UNAVAILABLE daemon down or draining,
    DEADLINE_EXCEEDED)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__("%s: %s" % (code.name, message))
        self.code = code
        self.message = message


def error_from_rpc(e: grpc.RpcError, target: str) -> NpukError:
    code, msg = e.code(), e.details() or ""
    # Only gRPC's own connection failures, not a daemon that answered
    # UNAVAILABLE itself (draining, model NOT_SERVING).
    if code == grpc.StatusCode.UNAVAILABLE and "connect" in msg.lower():
        msg += (" (is npukd running and listening on %s? start it, or pass "
                "Client(target='unix:PATH' or 'HOST:PORT'))" % target)
    return NpukError(code, msg)


def timing_of(resp: Any, round_trip_us: float) -> Timing:
    p = resp.parameters

    def i64(name):
        return p[name].int64_param if name in p else 0

    return Timing(i64("queue_us"), i64("compute_us"), i64("server_us"),
                  i64("batch_frames"),
                  p["backend"].string_param if "backend" in p else "",
                  round_trip_us)


def add_input(req: pb.ModelInferRequest, name: str, dtype: str,
              array: np.ndarray) -> None:
    """Appends `array` as input `name` with its bytes in raw_input_contents."""
    t = req.inputs.add()
    t.name = name
    t.datatype = dtype
    t.shape.extend(array.shape)
    req.raw_input_contents.append(array.tobytes())


def mel_request(frames: ArrayLike) -> pb.ModelInferRequest:
    a = np.ascontiguousarray(frames)
    if a.dtype != np.int16 or a.ndim != 2 or a.shape[1] != features.N_FFT \
            or a.shape[0] == 0:
        raise ValueError("mel takes int16 frames [N, 400] with N >= 1; got %s "
                         "%s (use log_mel_spectrogram() for float audio)"
                         % (a.dtype, a.shape))
    req = pb.ModelInferRequest(model_name="mel")
    add_input(req, "audio", "INT16", a)
    return req


def single_output(resp: Any, shape: Tuple[int, ...]) -> np.ndarray:
    want = int(np.prod(shape))
    # Each read of a protobuf bytes field copies it: read it once.
    raws = list(resp.raw_output_contents)
    if len(raws) != 1 or len(raws[0]) != want:
        raise NpukError(grpc.StatusCode.INTERNAL,
                        "daemon returned %s output bytes for %s, expected %d"
                        % ([len(r) for r in raws], resp.model_name, want))
    return np.frombuffer(raws[0], dtype=np.int8).reshape(shape)


def stats_dict(resp: Any) -> Dict[str, Dict[str, Any]]:
    out = {}
    for m in resp.model_stats:
        s = m.inference_stats
        runs = s.compute_infer.count
        out[m.name] = {
            "inference_count": m.inference_count,
            "execution_count": m.execution_count,
            "success": s.success.count,
            "fail": s.fail.count,
            "mean_batch": (m.inference_count / m.execution_count
                           if m.execution_count else 0.0),
            "mean_queue_us": (s.queue.ns / s.success.count / 1e3
                              if s.success.count else 0.0),
            "mean_compute_us": ((s.compute_input.ns + s.compute_infer.ns +
                                 s.compute_output.ns) / runs / 1e3
                                if runs else 0.0),
            "batch_stats": {b.batch_size: b.compute_infer.count
                            for b in m.batch_stats},
        }
    return out
