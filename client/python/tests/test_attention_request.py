"""npuk.attention without a daemon: the `attention` requests Client.attention
and attention_int8 build (shapes, parameters sent only when not the
defaults, per-tensor quantisation, the score and output scales), the way
back to floats, and the errors. A numpy stand-in for the daemon (exact
softmax on the int8 inputs, rounded and saturated like the kernel) answers
the calls that go through a Client."""

import asyncio

import grpc
import numpy as np
import pytest

import npuk
from npuk import attention as att
from npuk._proto import grpc_service_pb2 as pb
from attention_ref import (daemon_answer, head_metrics, inputs_of,
                           softmax_attention)


def params(req):
    return {k: getattr(p, p.WhichOneof("parameter_choice"))
            for k, p in req.parameters.items()}


class FakeDaemon:
    """Answers Client._infer_request like npukd's attention model."""

    def __init__(self):
        self.requests = []

    def __call__(self, req, timeout):
        self.requests.append(req)
        out = np.clip(np.rint(daemon_answer(req)), -128, 127).astype(np.int8)
        return pb.ModelInferResponse(model_name=req.model_name,
                                     raw_output_contents=[out.tobytes()])


@pytest.fixture
def client():
    c = npuk.Client("unix:/nonexistent/npukd.sock", shared_memory=False)
    c._infer_request = FakeDaemon()
    yield c
    c.close()


def gaussian(rng, shape, sigma):
    return rng.normal(0.0, sigma, shape).astype(np.float32)


# --- the int8 request --------------------------------------------------------

def test_tile_request_is_todays_request():
    rng = np.random.default_rng(1)
    q, k, v = (rng.integers(-127, 128, (3, 64, 64), dtype=np.int8)
               for _ in range(3))
    req = att.int8_request(q, k, v, 0.01)
    assert req.model_name == "attention"
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [
        (name, "INT8", [3, 64, 64]) for name in "qkv"]
    assert req.raw_input_contents == [q.tobytes(), k.tobytes(), v.tobytes()]
    # Nothing a daemon from before sequence attention would refuse.
    assert params(req) == {"score_scale": 0.01}
    assert params(att.int8_request(q, k, v, 0.01, 1.0, False)) == {
        "score_scale": 0.01}


def test_sequence_request_sends_what_is_not_the_default():
    q = np.ones((2, 1, 64), np.int8)
    kv = np.ones((2, 448, 64), np.int8)
    req = att.int8_request(q, kv, kv, 0.002, output_scale=0.25, causal=True)
    assert [list(t.shape) for t in req.inputs] == [[2, 1, 64], [2, 448, 64],
                                                    [2, 448, 64]]
    assert params(req) == {"score_scale": 0.002, "output_scale": 0.25,
                           "causal": True}
    assert req.parameters["causal"].WhichOneof("parameter_choice") == \
        "bool_param"
    assert att.out_shape(req) == (2, 1, 64)
    assert params(att.int8_request(q, kv, kv, 0.002, output_scale=2.0)) == {
        "score_scale": 0.002, "output_scale": 2.0}


def test_attention_int8_returns_the_daemons_bytes(client):
    rng = np.random.default_rng(2)
    q = rng.integers(-60, 60, (2, 5, 64), dtype=np.int8)
    k, v = (rng.integers(-60, 60, (2, 70, 64), dtype=np.int8)
            for _ in range(2))
    out = client.attention_int8(q, k, v, 0.001, output_scale=0.5,
                                causal=True)
    assert out.shape == (2, 5, 64) and out.dtype == np.int8
    [req] = client._infer_request.requests
    want = np.clip(np.rint(daemon_answer(req)), -128, 127)
    np.testing.assert_array_equal(out, want)
    assert params(req) == {"score_scale": 0.001, "output_scale": 0.5,
                           "causal": True}


# --- the float request -------------------------------------------------------

def test_float_tensors_are_quantised_per_tensor():
    rng = np.random.default_rng(3)
    q = gaussian(rng, (2, 4, 30, 64), 1.5)
    k, v = (gaussian(rng, (2, 4, 90, 64), s) for s in (2.0, 0.7))
    sent = att.float_request(q, k, v)
    x = inputs_of(sent.request)
    # [B, H, L, 64] is sent as [N = B x H, L, 64].
    assert {n: a.shape for n, a in x.items()} == {
        "q": (8, 30, 64), "k": (8, 90, 64), "v": (8, 90, 64)}
    scales = {}
    for name, a in zip("qkv", (q, k, v)):
        want, scales[name] = npuk.quantize(a)
        assert scales[name] == pytest.approx(np.abs(a).max() / 127)
        np.testing.assert_array_equal(x[name], want.reshape(x[name].shape))
    assert sent.score_scale == pytest.approx(scales["q"] * scales["k"] / 8)
    p = params(sent.request)
    assert p["score_scale"] == sent.score_scale
    assert "causal" not in p
    assert sent.unit == pytest.approx(scales["v"] * sent.output_scale)
    assert sent.shape == (2, 4, 30, 64)


def test_an_output_scale_of_one_is_not_sent():
    rng = np.random.default_rng(4)
    # One key: the output is v's row itself, whose peak is max|v|.
    q = gaussian(rng, (2, 3, 64), 1.0)
    k, v = (gaussian(rng, (2, 1, 64), 1.0) for _ in range(2))
    sent = att.float_request(q, k, v)
    assert sent.output_scale == 1.0
    assert "output_scale" not in params(sent.request)
    given = att.float_request(q, k, v, output_scale=0.5)
    assert params(given.request)["output_scale"] == 0.5


def test_small_scores_use_coarser_grids_at_the_lowest_score_scale():
    rng = np.random.default_rng(5)
    q, k, v = (gaussian(rng, (1, 200, 64), 0.05) for _ in range(3))
    (_, sq), (_, sk) = npuk.quantize(q), npuk.quantize(k)
    assert sq * sk / 8 < att.MIN_SCORE_SCALE  # out of the daemon's range
    sent = att.float_request(q, k, v)
    assert sent.score_scale == pytest.approx(att.MIN_SCORE_SCALE, rel=1e-12)
    assert sent.score_scale >= att.MIN_SCORE_SCALE
    x = inputs_of(sent.request)
    scores = np.einsum("nid,njd->nij", x["q"].astype(np.float64),
                       x["k"]) * sent.score_scale
    exact = np.einsum("nid,njd->nij", q.astype(np.float64), k) / 8
    assert np.abs(scores - exact).max() < 0.01


def test_too_large_scores_are_refused():
    q = np.full((1, 2, 64), 1000.0, np.float32)
    with pytest.raises(ValueError, match="too large for int8 scores"):
        att.float_request(q, q, q)


def test_zero_tensors_are_sent_at_valid_scales():
    z = np.zeros((1, 3, 64), np.float32)
    sent = att.float_request(z, z, z)
    assert att.MIN_SCORE_SCALE <= sent.score_scale <= att.MAX_SCORE_SCALE
    assert sent.output_scale == 1.0


# --- the output scale --------------------------------------------------------

def spans_and_peaks(q, k, v, causal=False):
    """(the magnitude 127 output units stand for at the chosen output
    scale, the float result's peak, the int8 result's peak in output
    units before saturation)."""
    sent = att.float_request(q, k, v, causal)
    n = int(np.prod(q.shape[:-2]))
    ref = softmax_attention(q.reshape(n, -1, 64), k.reshape(n, -1, 64),
                                  v.reshape(n, -1, 64), causal)
    return (127 * sent.unit, float(np.abs(ref).max()),
            float(np.abs(daemon_answer(sent.request)).max()))


# Heads that fit in the sample (every row computed), causal rows that see
# few keys, flat rows, and sequences whose sampled rows decide.
@pytest.mark.parametrize("name,n,lq,lk,causal,sigma", [
    ("decoder step", 8, 1, 1500, False, 1.0),
    ("decoder step, sigma 3", 8, 1, 1500, False, 3.0),
    ("cached causal step", 8, 4, 448, True, 2.0),
    ("tiles", 16, 64, 64, False, 2.0),
    ("causal 448", 8, 448, 448, True, 1.0),
    ("causal 448, sigma 2", 8, 448, 448, True, 2.0),
    ("flat rows", 4, 1500, 1500, False, 0.4),
    ("encoder, sigma 3", 4, 1500, 1500, False, 3.0),
])
def test_output_scale_spans_the_result_saturating_at_most_two_units(
        name, n, lq, lk, causal, sigma):
    """The grid spans the float peak with PEAK_MARGIN's headroom. The int8
    answer can peak a little above the float result (quantised q, k, v move
    it): at 1.1 headroom a value may pass 127 units by about one, so it
    saturates by under 2 % of the peak, which buys every other value a 12 %
    finer grid than 1.25's."""
    rng = np.random.default_rng(6)
    q = gaussian(rng, (n, lq, 64), sigma)
    k, v = (gaussian(rng, (n, lk, 64), sigma) for _ in range(2))
    spanned, peak, int8_peak = spans_and_peaks(q, k, v, causal)
    print("%s: spans %.4g, float peak %.4g (ratio %.3f), int8 peak %.1f "
          "units" % (name, spanned, peak, spanned / peak, int8_peak))
    assert int8_peak <= 129.5, name  # saturation by at most 2 units
    # A 1500-row head's 64 sampled rows can miss its peak row by a little.
    assert spanned >= (peak if lq <= att.SAMPLE_ROWS else 0.97 * peak), name
    # Within the margin of the peak (the cap at output_scale 1 is tighter).
    assert spanned <= att.PEAK_MARGIN * peak * 1.0001, name


def test_long_heads_trade_rare_saturation_for_a_finer_grid():
    """With 1500 rows a head, 64 sampled rows can miss the few rows whose
    softmax is nearly one-hot, so a handful of values may pass 127 units
    and saturate; the grid still spans most of the peak, and the result is
    closer to the float one than on output_scale 1's grid."""
    rng = np.random.default_rng(7)
    for sigma in (1.0, 1.5, 2.0, 2.5):
        q, k, v = (gaussian(rng, (4, 1500, 64), sigma) for _ in range(3))
        sent = att.float_request(q, k, v)
        answer = daemon_answer(sent.request)
        ref = softmax_attention(q, k, v, False)
        spanned = 127 * sent.unit
        peak = float(np.abs(ref).max())
        over = float(np.mean(np.abs(answer) > 127.5))
        got = np.clip(np.rint(answer), -128, 127) * sent.unit
        # The same int8 inputs on output_scale 1's grid.
        plain = np.rint(answer * sent.output_scale) * \
            (sent.unit / sent.output_scale)
        print("sigma %.1f: output_scale %.4f spans %.3f of the float peak; "
              "%.2g of the values saturate; error %.4f (%.4f at scale 1)"
              % (sigma, sent.output_scale, spanned / peak, over,
                 np.linalg.norm(got - ref) / np.linalg.norm(ref),
                 np.linalg.norm(plain - ref) / np.linalg.norm(ref)))
        assert 0.5 * peak <= spanned <= att.PEAK_MARGIN * peak * 1.0001
        assert over <= 1e-4
        assert np.linalg.norm(got - ref) <= np.linalg.norm(plain - ref)


def test_sample_rows_are_deterministic_and_favour_early_causal_rows():
    assert att.sample_rows(10, False).tolist() == list(range(10))
    rows = att.sample_rows(1500, False)
    assert len(rows) == 64 and rows[0] == 0 and rows[-1] == 1499
    causal = att.sample_rows(448, True)
    assert causal[:6].tolist() == [0, 1, 2, 3, 4, 5]
    assert causal[-1] == 447
    np.testing.assert_array_equal(att.sample_rows(448, True), causal)


def test_the_estimate_is_bounded_for_many_heads():
    """Past SAMPLE_SCORES scores the sample takes fewer rows per head, then
    fewer heads: the estimate costs ~1 GFLOP at most, whatever the
    request."""
    def scores(n, lq, lk, causal=False):
        heads, rows = att.sample_plan(n, lq, lk, causal)
        return len(heads), len(rows), len(heads) * len(rows) * lk

    assert scores(8, 1500, 1500) == (8, 64, 8 * 64 * 1500)
    assert scores(8, 1, 1500) == (8, 1, 8 * 1500)
    n, rows, total = scores(256, 4096, 4096)
    assert n == 256 and 1 <= rows < 64 and total <= att.SAMPLE_SCORES
    n, rows, total = scores(5000, 4096, 4096, True)
    assert n < 5000 and rows == 1 and total <= att.SAMPLE_SCORES
    # A smaller budget on a request small enough to run.
    rng = np.random.default_rng(8)
    q = gaussian(rng, (40, 1, 64), 1.0)
    k, v = (gaussian(rng, (40, 100, 64), 1.0) for _ in range(2))
    full = att.sampled_peak(q, k, v, False)
    assert full == pytest.approx(
        np.abs(softmax_attention(q, k, v, False)).max(), rel=1e-4)
    saved = att.SAMPLE_SCORES
    att.SAMPLE_SCORES = 1000
    try:
        assert scores(40, 1, 100)[0] == 10
        assert 0 < att.sampled_peak(q, k, v, False) <= full
    finally:
        att.SAMPLE_SCORES = saved


# --- through a Client --------------------------------------------------------

def test_float_attention_comes_back_in_q_shape_close_to_float(client):
    rng = np.random.default_rng(9)
    q = gaussian(rng, (2, 3, 40, 64), 1.5)
    k, v = (gaussian(rng, (2, 3, 300, 64), 1.5) for _ in range(2))
    out = client.attention(q, k, v, True)
    assert isinstance(out, np.ndarray)
    assert out.shape == q.shape and out.dtype == np.float32
    ref = softmax_attention(q.reshape(6, 40, 64), k.reshape(6, 300, 64),
                                  v.reshape(6, 300, 64), True)
    rel, cos = head_metrics(out.reshape(6, 40, 64), ref)
    assert np.median(rel) <= 0.045 and cos.min() >= 0.997


def test_torch_tensors_come_back_as_torch_tensors(client):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(10)
    q = torch.randn(1, 8, 1, 64, generator=g, dtype=torch.float64) * 2
    k, v = (torch.randn(1, 8, 448, 64, generator=g) * 2 for _ in range(2))
    k.requires_grad_(True)
    out = client.attention(q, k, v, causal=True)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32 and out.device == q.device
    assert tuple(out.shape) == (1, 8, 1, 64)
    want = softmax_attention(q.numpy()[0], k.detach().numpy()[0],
                                   v.numpy()[0], True)
    rel, cos = head_metrics(out.numpy()[0], want)
    assert np.median(rel) <= 0.045 and cos.min() >= 0.99
    # The same numbers as the arrays the tensors hold.
    arrays = client.attention(q.numpy(), k.detach().numpy(), v.numpy(), True)
    np.testing.assert_array_equal(out.numpy(), arrays)


def test_async_client_sends_the_same_requests(client):
    rng = np.random.default_rng(11)
    q = gaussian(rng, (4, 10, 64), 1.0)
    k, v = (gaussian(rng, (4, 100, 64), 1.0) for _ in range(2))
    want = client.attention(q, k, v)

    async def run():
        ac = npuk.AsyncClient("unix:/nonexistent/npukd.sock",
                              shared_memory=False)
        fake = FakeDaemon()

        async def infer(req, timeout):
            return fake(req, timeout)

        ac._infer_request = infer
        try:
            return (await ac.attention(q, k, v), fake.requests[0],
                    await ac.attention_int8(*(np.ones((1, 64, 64), np.int8),)
                                            * 3))
        finally:
            await ac.close()

    got, req, tile = asyncio.run(run())
    np.testing.assert_array_equal(got, want)
    assert req == client._infer_request.requests[0]
    assert tile.shape == (1, 64, 64)


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize("shapes,causal,says", [
    (((64,), (4, 64), (4, 64)), False, r"\[B, H, L, 64\] or \[N, L, 64\]"),
    (((1, 2, 3, 4, 64),) * 3, False, r"\[B, H, L, 64\] or \[N, L, 64\]"),
    (((1, 4, 64), (1, 1, 4, 64), (1, 1, 4, 64)), False, "same rank"),
    (((1, 4, 32), (1, 4, 32), (1, 4, 32)), False, "exactly 64"),
    (((2, 8, 4, 64), (2, 4, 4, 64), (2, 4, 4, 64)), False,
     "same heads.*grouped-query"),
    (((3, 4, 64), (2, 4, 64), (2, 4, 64)), False, "same heads"),
    (((1, 0, 64), (1, 4, 64), (1, 4, 64)), False, "Lq = 0 tokens.*skip"),
    (((1, 4, 64), (1, 0, 64), (1, 0, 64)), False, "Lk = 0 tokens"),
    (((1, 4097, 64), (1, 4, 64), (1, 4, 64)), False,
     "Lq = 4097.*windows of at most 4096"),
    (((1, 4, 64), (1, 5000, 64), (1, 5000, 64)), False, "Lk = 5000"),
    (((1, 4, 64), (1, 5, 64), (1, 6, 64)), False,
     "k has 5 tokens and v has 6.*same length"),
    (((1, 8, 64), (1, 4, 64), (1, 4, 64)), True,
     "Lq <= Lk.*Lq = 8, Lk = 4.*key/value cache.*or causal=False"),
    (((0, 4, 64),) * 3, False, "no heads"),
])
def test_bad_shapes_say_what_to_send(client, shapes, causal, says):
    arrays = [np.ones(s, np.float32) for s in shapes]
    with pytest.raises(ValueError, match=says):
        client.attention(*arrays, causal)
    assert client._infer_request.requests == []


def test_int8_shape_errors_name_the_contract(client):
    ok = np.zeros((1, 64, 64), np.int8)
    with pytest.raises(ValueError,
                       match=r"int8 q \[N, Lq, 64\].*attention\(\)"):
        client.attention_int8(ok.astype(np.float32), ok, ok)
    with pytest.raises(ValueError, match=r"int8 q \[N, Lq, 64\].* is int8 "
                                         r"\(64, 64\)"):
        client.attention_int8(ok[0], ok, ok)
    with pytest.raises(ValueError, match="k has 64 tokens and v has 3"):
        client.attention_int8(ok, ok, ok[:, :3])
    with pytest.raises(ValueError, match="Lq <= Lk"):
        client.attention_int8(ok, ok[:, :3], ok[:, :3], causal=True)


def test_other_bad_arguments(client):
    x = np.ones((1, 4, 64), np.float32)
    with pytest.raises(TypeError, match="timeout is keyword-only"):
        client.attention(x, x, x, 5.0)
    with pytest.raises(ValueError, match=r"output_scale is 0.*2\^-16"):
        client.attention(x, x, x, output_scale=0.0)
    bad = x.copy()
    bad[0, 2, 5] = np.nan
    with pytest.raises(ValueError, match=r"k has 1 NaN .*\(0, 2, 5\)"):
        client.attention(x, bad, x)
    with pytest.raises(TypeError, match="float array"):
        client.attention(x, x, np.array([["a"]]))


def test_old_daemons_refusal_says_to_upgrade():
    e = npuk.NpukError(grpc.StatusCode.INVALID_ARGUMENT,
                       "model 'attention' has no parameter 'output_scale' "
                       "(it takes: score_scale)")
    better = att.explain(e)
    assert better.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "upgrade npukd" in better.message
    other = npuk.NpukError(grpc.StatusCode.INVALID_ARGUMENT, "score_scale")
    assert att.explain(other) is other
