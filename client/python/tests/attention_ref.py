"""Float attention and per-head figures, for the tests of npuk.attention
(test_attention_request.py) and of the daemon (test_daemon.py)."""

import numpy as np


def softmax_attention(q, k, v, causal=False, score_scale=0.125):
    """softmax(q k^T score_scale) v in float64 on [N, L, 64]; causal: query
    i sees keys j <= i + Lk - Lq."""
    s = np.matmul(np.asarray(q, np.float64),
                  np.swapaxes(np.asarray(k, np.float64), 1, 2)) * score_scale
    if causal:
        lq, lk = s.shape[1], s.shape[2]
        s = np.where(np.arange(lk)[None] <= np.arange(lq)[:, None] + lk - lq,
                     s, -np.inf)
    p = np.exp(s - s.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    return np.matmul(p, np.asarray(v, np.float64))


def head_metrics(got, ref):
    """Per head (the first dim): ||got - ref|| / ||ref|| and cosine."""
    got, ref = (np.asarray(x, np.float64).reshape(len(x), -1)
                for x in (got, ref))
    rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
    cos = np.sum(got * ref, axis=1) / (np.linalg.norm(got, axis=1) *
                                       np.linalg.norm(ref, axis=1))
    return rel, cos


def inputs_of(request):
    """{name: int8 array} of an attention request."""
    return {t.name: np.frombuffer(raw, np.int8).reshape(tuple(t.shape))
            for t, raw in zip(request.inputs, request.raw_input_contents)}


def daemon_answer(request):
    """What the daemon computes for an attention request, to within the
    kernel's one output unit: exact softmax on the int8 inputs at the
    request's scales, in output units, before rounding and saturation."""
    x = inputs_of(request)
    p = request.parameters
    causal = "causal" in p and p["causal"].bool_param
    scale = p["output_scale"].double_param if "output_scale" in p else 1.0
    return softmax_attention(x["q"], x["k"], x["v"], causal,
                             p["score_scale"].double_param) / scale
