"""attention_seq (issue 15) against float softmax(QK^T/8) V: Gaussian heads
(sigma 1-3) quantised per tensor with scale max|x|/127, score_scale =
s_q s_k / 8, output_scale from the float result's peak (so the int8 output
spans the float result), dequantised out * s_v * output_scale. Per head:
relative Frobenius error and cosine. Also rows with structure: peaked,
flat, all-equal scores, one dominant key."""

import ctypes

import numpy as np
import pytest

from conftest import quantize_score_scale

D = 64


def quantize(x):
    scale = np.abs(x).max() / 127.0
    return np.clip(np.round(x / scale), -127, 127).astype(np.int8), scale


def quantize_output_scale(os):
    """online_softmax.h's QuantizeOutputScale restated: 1/os as
    multiplier 2^(shift-31), multiplier in [2^30, 2^31)."""
    return quantize_score_scale(1.0 / os)


def float_attention(q, k, v, causal):
    """q [n, lq, 64], k, v [n, lk, 64] float64; causal: query i sees keys
    j <= i + lk - lq."""
    s = q @ np.swapaxes(k, 1, 2) / 8.0
    if causal:
        lq, lk = q.shape[1], k.shape[1]
        i = np.arange(lq)[:, None]
        j = np.arange(lk)[None, :]
        s = np.where(j <= i + lk - lq, s, -np.inf)
    p = np.exp(s - s.max(axis=2, keepdims=True))
    p /= p.sum(axis=2, keepdims=True)
    return p @ v


@pytest.fixture(scope="module")
def seq(kernels):
    f = kernels.lib.attention_seq
    f.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int32] * 8

    def run(qi, ki, vi, causal, score_scale, output_scale):
        n, lq, _ = qi.shape
        lk = ki.shape[1]
        qi, ki, vi = (np.ascontiguousarray(x, dtype=np.int8)
                      for x in (qi, ki, vi))
        out = np.zeros((n, lq, D), np.int8)
        sm, ss = quantize_score_scale(score_scale)
        om, osh = quantize_output_scale(output_scale)
        f(qi.ctypes.data, ki.ctypes.data, vi.ctypes.data, out.ctypes.data,
          n, lq, lk, int(causal), sm, ss, om, osh)
        return out

    return run


def attend(seq, q, k, v, causal=False):
    """Quantise, run, dequantise; returns (kernel result, float result,
    int8 floor). The floor is exact float softmax on the int8 inputs with
    the output rounded to int8 at the same output scale: what any int8
    kernel with these scales can reach."""
    (qi, sq), (ki, sk), (vi, sv) = quantize(q), quantize(k), quantize(v)
    ref = float_attention(q, k, v, causal)
    output_scale = np.abs(ref).max() / (127.0 * sv)
    assert 2.0**-16 <= sq * sk / 8.0 <= 4.0, "score scale out of contract"
    got = seq(qi, ki, vi, causal, sq * sk / 8.0, output_scale)
    floor = float_attention(qi * sq, ki * sk, vi.astype(np.float64),
                            causal) / output_scale
    floor = np.clip(np.round(floor), -128, 127)
    unit = sv * output_scale
    return got * unit, ref, floor * unit


def metrics(got, ref):
    """Per head: relative Frobenius error, cosine."""
    rel = [np.linalg.norm(g - r) / np.linalg.norm(r) for g, r in zip(got, ref)]
    cos = [np.sum(g * r) / (np.linalg.norm(g) * np.linalg.norm(r))
           for g, r in zip(got, ref)]
    return np.array(rel), np.array(cos)


def gaussian_heads(rng, n, lq, lk):
    return [rng.normal(0.0, 1.0, (n, length, D)) *
            rng.uniform(1.0, 3.0, (n, 1, 1)) for length in (lq, lk, lk)]


# Lq = 1: one 64-value output row per head, so one peaked row decides the
# head's cosine. The int8 floor itself reaches only 0.99602 there (seed 15,
# the kernel's figure is the same to 5 digits): the 0.997 is not
# reachable by any int8 kernel at these scales, so that case checks 0.995
# and, like every case, that the kernel stays at the floor.
@pytest.mark.parametrize(
    "name,n,lq,lk,causal,median_bound,cos_bound",
    [("L=64", 64, 64, 64, False, 0.035, 0.997),
     ("Lq=Lk=1500", 6, 1500, 1500, False, 0.045, 0.997),
     ("Lq=1, Lk=1500", 64, 1, 1500, False, 0.045, 0.995),
     ("causal 448", 16, 448, 448, True, 0.045, 0.997)])
def test_gaussian(seq, name, n, lq, lk, causal, median_bound, cos_bound):
    rng = np.random.default_rng(15)
    # Each head is its own problem (its own quantisation scales).
    rel, cos, floor_rel, floor_cos = [], [], [], []
    for _ in range(n):
        q, k, v = gaussian_heads(rng, 1, lq, lk)
        got, ref, floor = attend(seq, q, k, v, causal)
        for into, values in zip((rel, cos, floor_rel, floor_cos),
                                metrics(got, ref) + metrics(floor, ref)):
            into.extend(values)
    rel, cos = np.array(rel), np.array(cos)
    floor_rel, floor_cos = np.array(floor_rel), np.array(floor_cos)
    print(f"{name}: relative error median {np.median(rel):.4f} max "
          f"{rel.max():.4f}; cosine min {cos.min():.5f} (int8 floor: median "
          f"{np.median(floor_rel):.4f}, cosine min {floor_cos.min():.5f})")
    assert np.median(rel) <= median_bound
    assert cos.min() >= cos_bound
    # The fixed-point softmax adds (almost) nothing to int8 quantisation.
    assert np.all(rel <= floor_rel + 0.003)
    assert np.all(cos >= floor_cos - 2e-4)


def test_structured_rows(seq):
    """Peaked rows (large sigma), flat rows (scores near zero), all-equal
    scores (identical keys), one dominant key per query."""
    rng = np.random.default_rng(16)
    lq, lk = 200, 1500
    cases = {}
    q, k, v = (rng.normal(0, 4.0, (1, n, D)) for n in (lq, lk, lk))
    cases["peaked"] = (q, k, v)
    # Scores of std ~0.12: about the flattest the score scale's lower bound
    # 2^-16 allows with int8 q, k (score_scale = s_q s_k / 8 ~ 2e-5 here).
    q, k, v = (rng.normal(0, s, (1, n, D))
               for n, s in ((lq, 0.35), (lk, 0.35), (lk, 1.0)))
    cases["flat"] = (q, k, v)
    q, v = rng.normal(0, 1, (1, lq, D)), rng.normal(0, 1, (1, lk, D))
    k = np.repeat(rng.normal(0, 1, (1, 1, D)), lk, axis=1)
    cases["all equal"] = (q, k, v)
    k = rng.normal(0, 0.3, (1, lk, D))
    idx = rng.integers(0, lk, lq)
    # Each query points at one key: its score ~18 against others' ~N(0, 2.3).
    q = 60.0 * k[0, idx][None] / np.linalg.norm(k[0, idx], axis=1)[None, :, None]
    v = rng.normal(0, 1, (1, lk, D))
    cases["one dominant"] = (q, k, v)
    for name, (q, k, v) in cases.items():
        got, ref, floor = attend(seq, q, k, v)
        rel, cos = metrics(got, ref)
        floor_rel, floor_cos = metrics(floor, ref)
        print(f"{name}: relative error {rel[0]:.4f}, cosine {cos[0]:.5f} "
              f"(int8 floor {floor_rel[0]:.4f}, {floor_cos[0]:.5f})")
        assert rel[0] <= floor_rel[0] + 0.003, name
        assert cos[0] >= 0.997, name
