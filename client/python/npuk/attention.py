"""Attention over whole sequences on npukd's `attention` model (issue 15).

The daemon takes int8 q [N, Lq, 64] and k, v [N, Lk, 64] (N = batch x
heads, 1 <= Lq, Lk <= 4096) and returns int8 [N, Lq, 64]

    out = sat8(round(softmax(q k^T * score_scale) v / output_scale))

with, under `causal`, query i seeing keys j <= i + Lk - Lq. This module is
the host half: the shape checks, the int8 request, and for float tensors
the per-tensor quantisation, the two scales and the way back to floats.
Client.attention / attention_int8 and their AsyncClient twins share it.

Float tensors (numpy or torch, [B, H, L, 64] or [N, L, 64]):
  - q, k, v are each quantised per tensor, x ~ s_x * x_int8 with
    s_x = max|x| / 127 (features.quantize);
  - score_scale = s_q s_k / 8, so the scores are Q K^T / 8. Below the
    daemon's 2^-16 (q, k too small for int8 scores), q and k are put on
    grids sqrt(2^-16 / (s_q s_k / 8)) times coarser, which makes it
    2^-16 exactly (the coarser rounding moves a Gaussian head's scores,
    all below ~16 there, by ~0.01). Above 4 it is refused (ValueError);
  - output_scale (OUTPUT_SCALE_RULE): each output row mixes rows of v, so
    |out| <= max|v| and output_scale 1 never saturates. Long rows average
    many values and come out small, so the client estimates the float
    result's peak P from an exact float softmax on a deterministic sample
    of query rows (sample_rows: at most 64 rows per head, evenly spaced;
    under `causal` half of them at geometrically spaced rows from row 0,
    which see the fewest keys; every row when a head has at most 64; fewer
    rows, then fewer heads, when the sample would pass SAMPLE_SCORES
    scores) and sends output_scale = min(1, 1.1 P / max|v|) (= 1.1 P /
    (127 s_v)), clamped to [2^-16, 1]. Rows outside the sample can peak
    higher; their few largest values then saturate, which costs far less
    than a coarser output grid for every value;
  - the result is out * s_v * output_scale, float32 with q's shape.
"""

from __future__ import annotations

import math
import sys
from typing import Any, NamedTuple, Optional, Sequence, Tuple

import grpc
import numpy as np
from numpy.typing import ArrayLike

from . import features
from . import _common as c
from ._common import NpukError
from ._proto import grpc_service_pb2 as pb

MODEL = "attention"
HEAD_DIM = 64
MAX_TOKENS = 4096
MIN_SCORE_SCALE = 2.0 ** -16
MAX_SCORE_SCALE = 4.0
MIN_OUTPUT_SCALE = 2.0 ** -16
MAX_OUTPUT_SCALE = 2.0 ** 16
# The output-scale estimate: rows per head, headroom over the sampled peak,
# and the most q.k scores it computes (~1 GFLOP of float32 work). The
# headroom covers the int8 answer peaking a little above the float one (the
# quantised q, k, v move it); more costs every value grid precision: on
# Whisper-base shapes (test_daemon.py, seeds 1, 2, 3, 15) 1.1 gave a median
# error 0.1-0.3 points lower than 1.25 at each seed, the same worst cosine
# to within 8e-4, and kept the encoder layer under the 4.5 %.
SAMPLE_ROWS = 64
PEAK_MARGIN = 1.1
SAMPLE_SCORES = 1 << 22
OUTPUT_SCALE_RULE = ("output_scale = min(1, 1.1 P / max|v|), P the peak of "
                     "the float result on a sample of query rows")


class FloatAttention(NamedTuple):
    """A float attention as sent: the int8 request, the float result's
    shape, and what turns the int8 answer back into floats."""
    request: pb.ModelInferRequest
    shape: Tuple[int, ...]  # q's shape, the result's
    unit: float  # float out = int8 out * unit (s_v * output_scale)
    score_scale: float
    output_scale: float
    like: Any  # the first torch.Tensor input (result device), or None


def _shape(a: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


def check_shapes(q: Sequence[int], k: Sequence[int], v: Sequence[int],
                 causal: bool) -> Tuple[int, int, int]:
    """The daemon's contract on shapes [..., L, 64] of rank >= 3 (every
    leading dim a head): (N, Lq, Lk), or ValueError saying what to send
    instead."""
    shapes = {"q": tuple(q), "k": tuple(k), "v": tuple(v)}
    for name, s in shapes.items():
        if s[-1] != HEAD_DIM:
            raise ValueError(
                "%s has %d values per head (shape %s); npukd's attention "
                "takes heads of exactly 64 (Whisper's and most transformers' "
                "d_head): compute other head sizes in float"
                % (name, s[-1], s))
    if not shapes["q"][:-2] == shapes["k"][:-2] == shapes["v"][:-2]:
        raise ValueError(
            "q, k and v must have the same heads (the dims before [L, 64]); "
            "got q %s, k %s, v %s: send one k and one v per query head "
            "(repeat k and v for grouped-query attention)"
            % (shapes["q"], shapes["k"], shapes["v"]))
    n = math.prod(shapes["q"][:-2])
    if n == 0:
        raise ValueError("q, k and v have no heads (shape %s); send at least "
                         "one [L, 64] head" % (shapes["q"],))
    lq, lk = shapes["q"][-2], shapes["k"][-2]
    if shapes["v"][-2] != lk:
        raise ValueError(
            "k has %d tokens and v has %d; every key needs its value: send k "
            "and v of the same length" % (lk, shapes["v"][-2]))
    for name, length, sym in (("q", lq, "Lq"), ("k", lk, "Lk")):
        if length < 1:
            raise ValueError(
                "%s has %s = 0 tokens; attention needs at least one query "
                "and one key: skip the call" % (name, sym))
        if length > MAX_TOKENS:
            raise ValueError(
                "%s has %s = %d tokens; npukd takes at most %d: split longer "
                "sequences into windows of at most %d tokens"
                % (name, sym, length, MAX_TOKENS, MAX_TOKENS))
    if causal and lq > lk:
        raise ValueError(
            "causal attention needs Lq <= Lk (query i sees keys j <= i + Lk "
            "- Lq); got Lq = %d, Lk = %d: send the whole key/value cache (the "
            "keys of every token so far, Lk >= Lq), or causal=False"
            % (lq, lk))
    return n, lq, lk


def _check_causal(causal: Any) -> bool:
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(
            "causal must be a bool; got %r (timeout is keyword-only: pass "
            "timeout=...)" % (causal,))
    return bool(causal)


def int8_request(q: ArrayLike, k: ArrayLike, v: ArrayLike,
                 score_scale: float = 0.125, output_scale: float = 1.0,
                 causal: bool = False) -> pb.ModelInferRequest:
    """The `attention` request for int8 q [N, Lq, 64], k, v [N, Lk, 64].
    output_scale and causal are sent only when not the defaults (1.0,
    False), so [N, 64, 64] requests are what daemons before sequence
    attention take. Shapes are checked here; the scales by the daemon."""
    causal = _check_causal(causal)
    arrays = [np.ascontiguousarray(x) for x in (q, k, v)]
    for name, a in zip("qkv", arrays):
        if a.dtype != np.int8 or a.ndim != 3:
            raise ValueError(
                "attention_int8 takes int8 q [N, Lq, 64], k and v [N, Lk, "
                "64]; %s is %s %s (use attention() for float tensors)"
                % (name, a.dtype, _shape(a)))
    check_shapes(*(_shape(a) for a in arrays), causal)
    req = pb.ModelInferRequest(model_name=MODEL)
    for name, a in zip("qkv", arrays):
        c.add_input(req, name, "INT8", a)
    req.parameters["score_scale"].double_param = float(score_scale)
    if float(output_scale) != 1.0:
        req.parameters["output_scale"].double_param = float(output_scale)
    if causal:
        req.parameters["causal"].bool_param = True
    return req


def out_shape(req: pb.ModelInferRequest) -> Tuple[int, int, int]:
    """The int8 answer's shape [N, Lq, 64] for an int8_request."""
    n, lq = req.inputs[0].shape[0], req.inputs[0].shape[1]
    return int(n), int(lq), HEAD_DIM


def _is_torch_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_float32(x: Any, name: str) -> np.ndarray:
    if _is_torch_tensor(x):
        x = x.detach().to(device="cpu", dtype=sys.modules["torch"].float32)
        a = x.numpy()
    else:
        a = np.asarray(x)
        if not (np.issubdtype(a.dtype, np.floating) or
                np.issubdtype(a.dtype, np.integer)):
            raise TypeError("%s must be a float array or tensor; got dtype %s"
                            % (name, a.dtype))
        a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        bad = ~np.isfinite(a)
        raise ValueError(
            "%s has %d NaN or infinite values (the first at index %s); "
            "attention takes finite values" % (
                name, int(bad.sum()),
                tuple(int(i) for i in np.unravel_index(np.argmax(bad),
                                                       a.shape))))
    return a


def sample_rows(lq: int, causal: bool, rows: int = SAMPLE_ROWS) -> np.ndarray:
    """The query rows the output-scale estimate computes: every row when
    there are at most `rows`, else `rows` evenly spaced ones; under causal,
    half of them geometrically spaced from row 0 (the rows that see the
    fewest keys, so average the least and peak the highest)."""
    if lq <= rows:
        return np.arange(lq)
    geometric = rows // 2 if causal else 0
    picked = np.rint(np.linspace(0, lq - 1, rows - geometric))
    if geometric:
        picked = np.concatenate(
            [picked, np.rint(np.geomspace(1, lq, geometric)) - 1])
    return np.unique(picked.astype(np.int64))


def sample_plan(n: int, lq: int, lk: int,
                causal: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(heads, rows) of the output-scale estimate: every head and
    sample_rows(lq, causal) rows, fewer rows per head (at least one) and
    then evenly spaced heads when that would pass SAMPLE_SCORES scores."""
    per_head = min(lq, SAMPLE_ROWS)
    heads = np.arange(n)
    if n * per_head * lk > SAMPLE_SCORES:
        per_head = max(1, SAMPLE_SCORES // (n * lk))
        if n * per_head * lk > SAMPLE_SCORES:
            heads = np.unique(np.rint(np.linspace(
                0, n - 1, max(1, SAMPLE_SCORES // lk))).astype(np.int64))
    return heads, sample_rows(lq, causal, per_head)


def sampled_peak(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                 causal: bool) -> float:
    """max |softmax(Q K^T / 8) V| over sample_plan's rows (float32, exact
    softmax) of float q [N, Lq, 64], k, v [N, Lk, 64]."""
    n, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    heads, rows = sample_plan(n, lq, lk, causal)
    hidden = (np.arange(lk)[None, :] > rows[:, None] + (lk - lq)
              if causal else None)
    # Chunks of heads keep each score matrix near 16 MB.
    chunk = max(1, (1 << 22) // (len(rows) * lk))
    peak = 0.0
    for start in range(0, len(heads), chunk):
        h = heads[start:start + chunk]
        s = np.matmul(q[h][:, rows], np.swapaxes(k[h], 1, 2))
        s *= np.float32(0.125)
        if hidden is not None:
            s[:, hidden] = -np.inf
        s -= s.max(axis=2, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=2, keepdims=True)
        peak = max(peak, float(np.abs(np.matmul(s, v[h])).max()))
    return peak


def choose_output_scale(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                        causal: bool) -> float:
    """OUTPUT_SCALE_RULE for float q [N, Lq, 64], k, v [N, Lk, 64]."""
    v_peak = float(np.abs(v).max())
    if v_peak == 0.0:
        return 1.0  # the result is zero on any grid
    want = PEAK_MARGIN * sampled_peak(q, k, v, causal)
    return min(1.0, max(MIN_OUTPUT_SCALE, want / v_peak))


def _score_grids(q: np.ndarray, k: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, float]:
    (qi, sq), (ki, sk) = features.quantize(q), features.quantize(k)
    if not qi.any() or not ki.any():
        return qi, ki, 0.125  # every score is 0 at any scale
    score_scale = sq * sk / 8.0
    if score_scale > MAX_SCORE_SCALE:
        raise ValueError(
            "q and k are too large for int8 scores: max|q| max|k| = %.4g, so "
            "score_scale = s_q s_k / 8 = %.4g is over npukd's %g (softmax of "
            "scores that large is a hard maximum): scale the inputs down, or "
            "compute this in float" % (sq * sk * 127 * 127, score_scale,
                                       MAX_SCORE_SCALE))
    if score_scale < MIN_SCORE_SCALE:
        coarser = math.sqrt(MIN_SCORE_SCALE / score_scale)
        (qi, sq), (ki, sk) = (features.quantize(q, sq * coarser),
                              features.quantize(k, sk * coarser))
        score_scale = max(MIN_SCORE_SCALE, sq * sk / 8.0)
    return qi, ki, score_scale


def float_request(q: Any, k: Any, v: Any, causal: bool = False,
                  output_scale: Optional[float] = None) -> FloatAttention:
    """The `attention` request for float q [B, H, Lq, 64] or [N, Lq, 64]
    and k, v of the same heads and Lk tokens (numpy or torch), quantised
    as the module docstring says; output_scale None chooses it by
    OUTPUT_SCALE_RULE. Bad input raises ValueError/TypeError."""
    causal = _check_causal(causal)
    like = next((x for x in (q, k, v) if _is_torch_tensor(x)), None)
    arrays = [_as_float32(x, name) for x, name in zip((q, k, v), "qkv")]
    for a, name in zip(arrays, "qkv"):
        if a.ndim not in (3, 4):
            raise ValueError(
                "attention takes q, k, v of shape [B, H, L, 64] or [N, L, 64] "
                "(N = B x H); %s has shape %s" % (name, _shape(a)))
    if len({a.ndim for a in arrays}) != 1:
        raise ValueError(
            "q, k and v must have the same rank ([B, H, L, 64] each or "
            "[N, L, 64] each); got q %s, k %s, v %s"
            % tuple(_shape(a) for a in arrays))
    n, lq, lk = check_shapes(*(_shape(a) for a in arrays), causal)
    qf, kf, vf = (a.reshape(n, -1, HEAD_DIM) for a in arrays)
    if output_scale is None:
        output_scale = choose_output_scale(qf, kf, vf, causal)
    elif not MIN_OUTPUT_SCALE <= float(output_scale) <= MAX_OUTPUT_SCALE:
        raise ValueError(
            "output_scale is %r; npukd takes [2^-16, 2^16] (out = softmax(q "
            "k^T s) v / output_scale; None chooses it: %s)"
            % (output_scale, OUTPUT_SCALE_RULE))
    qi, ki, score_scale = _score_grids(qf, kf)
    vi, sv = features.quantize(vf)
    req = int8_request(qi, ki, vi, score_scale, float(output_scale), causal)
    return FloatAttention(req, _shape(arrays[0]), sv * float(output_scale),
                          score_scale, float(output_scale), like)


def to_output(out: np.ndarray, sent: FloatAttention) -> Any:
    """The daemon's int8 [N, Lq, 64] as float32 with q's shape: a torch
    tensor on the first tensor input's device, else numpy."""
    f = (out.astype(np.float32) * np.float32(sent.unit)).reshape(sent.shape)
    if sent.like is None:
        return f
    torch = sys.modules["torch"]
    return torch.from_numpy(f).to(sent.like.device)


def explain(e: NpukError) -> NpukError:
    """Says what to do when the daemon's attention model predates
    sequences (it refuses output_scale and causal as unknown)."""
    if e.code == grpc.StatusCode.INVALID_ARGUMENT and (
            "no parameter 'output_scale'" in e.message or
            "no parameter 'causal'" in e.message):
        return NpukError(e.code, (
            "%s (this npukd's attention model takes only [N, 64, 64] tiles "
            "and score_scale, from before sequence attention: upgrade npukd, "
            "or send such tiles with output_scale=1.0 and causal=False)")
            % e.message)
    return e
