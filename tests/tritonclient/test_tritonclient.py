"""Unmodified tritonclient (http and grpc, built from source by
triton_env) against the real npukd: health, metadata, config, repository
index, statistics, and inference for every served model, with outputs
byte-identical to a plain gRPC ModelInfer of the same input."""

from __future__ import annotations

import numpy as np
import pytest

import triton_env

_DTYPES = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
           "FP32": np.float32}


@pytest.fixture(scope="module")
def daemon():
    triton_env.build_tritonclient()
    with triton_env.Npukd(["--backend=cpu"]) as d:
        yield d


@pytest.fixture(scope="module")
def clients(daemon):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    h = httpclient.InferenceServerClient(daemon.http_url)
    g = grpcclient.InferenceServerClient(daemon.grpc_url)
    yield h, g
    h.close()
    g.close()


def _plain_grpc(daemon):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    channel = grpc.insecure_channel(daemon.grpc_url)
    return channel, service_pb2_grpc.GRPCInferenceServiceStub(channel), \
        service_pb2


def _models(g):
    return [m.name for m in g.get_model_repository_index().models]


def _inputs(meta, rng):
    out = []
    for t in meta.inputs:
        # Variable dims: N = 2 items, or 4000 samples for a 1-D input
        # (log_mel's PCM), 400 elsewhere.
        rank = len(t.shape)
        shape = [d if d >= 0 else (4000 if rank == 1 else
                                   (2 if i == 0 else 400))
                 for i, d in enumerate(t.shape)]
        dtype = _DTYPES[t.datatype]
        if dtype == np.float32:
            a = rng.uniform(-1, 1, size=shape).astype(np.float32)
        elif dtype == np.int8:
            a = np.clip(rng.normal(0, 20, size=shape), -127, 127).astype(np.int8)
        else:
            a = np.clip(rng.normal(0, 2000, size=shape), -32000,
                        32000).astype(dtype)
        out.append((t.name, t.datatype, a))
    return out


def test_health(clients):
    h, g = clients
    assert h.is_server_live() and h.is_server_ready()
    assert g.is_server_live() and g.is_server_ready()
    for m in _models(g):
        assert h.is_model_ready(m) and g.is_model_ready(m)
        assert h.is_model_ready(m, "1")
    assert not h.is_model_ready("no_such_model")


def test_metadata_config_index(clients):
    h, g = clients
    hs, gs = h.get_server_metadata(), g.get_server_metadata()
    assert hs["name"] == gs.name == "npukd"
    assert hs["version"] == gs.version
    assert "binary_tensor_data" in hs["extensions"]
    names = _models(g)
    assert [m["name"] for m in h.get_model_repository_index()] == names
    for m in names:
        hm, gm = h.get_model_metadata(m), g.get_model_metadata(m)
        assert hm["name"] == gm.name
        assert hm["platform"] == gm.platform
        assert [(i["name"], i["datatype"], i["shape"]) for i in hm["inputs"]] \
            == [(i.name, i.datatype, list(i.shape)) for i in gm.inputs]
        assert [(o["name"], o["datatype"]) for o in hm["outputs"]] == \
            [(o.name, o.datatype) for o in gm.outputs]
        hc, gc = h.get_model_config(m), g.get_model_config(m).config
        assert hc["name"] == gc.name
        assert hc["max_batch_size"] == gc.max_batch_size
        assert [i["name"] for i in hc["input"]] == [i.name for i in gc.input]


def test_infer_every_model_byte_identical_to_plain_grpc(daemon, clients):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    h, g = clients
    channel, stub, pb = _plain_grpc(daemon)
    rng = np.random.default_rng(7)
    try:
        for m in _models(g):
            meta = g.get_model_metadata(m)
            inputs = _inputs(meta, rng)
            out_name = meta.outputs[0].name
            req = pb.ModelInferRequest(model_name=m)
            for name, dt, a in inputs:
                t = req.inputs.add()
                t.name, t.datatype = name, dt
                t.shape.extend(a.shape)
                req.raw_input_contents.append(a.tobytes())
            plain = stub.ModelInfer(req, timeout=60)
            want = plain.raw_output_contents[0]

            for binary in (True, False):
                hin = []
                for name, dt, a in inputs:
                    i = httpclient.InferInput(name, list(a.shape), dt)
                    i.set_data_from_numpy(a, binary_data=binary)
                    hin.append(i)
                outs = [httpclient.InferRequestedOutput(out_name,
                                                        binary_data=binary)]
                r = h.infer(m, hin, outputs=outs)
                got = r.as_numpy(out_name)
                assert got.tobytes() == want, (m, "http", binary)
                assert list(got.shape) == list(plain.outputs[0].shape)
            # Default: no outputs named, binary_data_output=true.
            r = h.infer(m, hin)
            assert r.as_numpy(out_name).tobytes() == want, (m, "http default")

            gin = []
            for name, dt, a in inputs:
                i = grpcclient.InferInput(name, list(a.shape), dt)
                i.set_data_from_numpy(a)
                gin.append(i)
            r = g.infer(m, gin)
            assert r.as_numpy(out_name).tobytes() == want, (m, "grpc")
            resp = r.get_response()
            assert resp.parameters["backend"].string_param == "cpu"
    finally:
        channel.close()


def test_errors_match_grpc(clients):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException
    h, g = clients
    a = np.zeros((1, 399), dtype=np.int16)
    hi = httpclient.InferInput("audio", [1, 399], "INT16")
    hi.set_data_from_numpy(a)
    gi = grpcclient.InferInput("audio", [1, 399], "INT16")
    gi.set_data_from_numpy(a)
    with pytest.raises(InferenceServerException) as he:
        h.infer("mel", [hi])
    with pytest.raises(InferenceServerException) as ge:
        g.infer("mel", [gi])
    assert he.value.message() == ge.value.message()
    assert he.value.status() == "400"
    with pytest.raises(InferenceServerException) as nf:
        h.get_model_metadata("no_such_model")
    assert nf.value.status() == "404"
    assert "unknown model" in nf.value.message()


def test_statistics(clients):
    h, g = clients
    hs = h.get_inference_statistics("mel")["model_stats"][0]
    gs = g.get_inference_statistics("mel").model_stats[0]
    assert hs["name"] == gs.name == "mel"
    assert hs["inference_count"] == gs.inference_count > 0
    assert hs["execution_count"] == gs.execution_count
    assert hs["inference_stats"]["success"]["count"] == \
        gs.inference_stats.success.count
    assert len(h.get_inference_statistics()["model_stats"]) == \
        len(g.get_inference_statistics().model_stats)
