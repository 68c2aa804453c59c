"""Requests built from hand-made ModelMetadata/ModelConfig, without a daemon:
the generic path must work for a model the client was not written for."""

import grpc
import numpy as np
import pytest

import npuk
from npuk import model as m
from npuk._proto import grpc_service_pb2 as pb


def _meta(name, inputs, outputs):
    meta = pb.ModelMetadataResponse(name=name)
    for lst, tensors in ((meta.inputs, inputs), (meta.outputs, outputs)):
        for tname, dtype, shape in tensors:
            lst.add(name=tname, datatype=dtype, shape=shape)
    return meta


def _config(max_batch=0, params=None):
    c = pb.ModelConfigResponse()
    c.config.max_batch_size = max_batch
    for k, v in (params or {}).items():
        c.config.parameters[k].string_value = v
    return c


def passthrough():
    return npuk.ModelInfo.from_proto(
        _meta("passthrough", [("in", "INT8", [-1, 4096])],
              [("out", "INT8", [-1, 4096])]), _config(256))


def made_up():
    """Three inputs of three dtypes and typed parameters: nothing here leans
    on one kernel's layout."""
    return npuk.ModelInfo.from_proto(
        _meta("made_up", [("a", "INT16", [-1, 3]), ("b", "INT8", [-1, 2, 2]),
                          ("c", "FP32", [-1, 1])], [("y", "FP32", [-1, 5])]),
        _config(8, {"gain": "gain (double), default 1, in [0.5, 2]",
                    "steps": "request parameter (int64), default 4",
                    "causal": "bool, default false",
                    "note": "free text"}))


def test_reads_tensors_limits_and_parameter_types():
    p = passthrough()
    assert p.name == "passthrough" and p.max_items == 256 and p.params == ()
    assert p.inputs == (npuk.TensorInfo("in", "INT8", (4096,)),)
    assert p.inputs[0].dtype == np.int8
    x = made_up()
    assert [q.name for q in x.params] == ["causal", "gain", "note", "steps"]
    assert {q.name: q.type for q in x.params} == {
        "causal": "bool", "gain": "double", "note": "", "steps": "int64"}


def test_refuses_tensors_it_cannot_build():
    with pytest.raises(ValueError, match=r"\[-1, \.\.\.\]"):
        npuk.ModelInfo.from_proto(_meta("m", [("x", "INT8", [4, 4])], []),
                                  _config())
    with pytest.raises(ValueError, match="BYTES"):
        npuk.ModelInfo.from_proto(_meta("m", [("s", "BYTES", [-1])], []),
                                  _config())


def test_request_shapes_and_order_come_from_metadata():
    blocks = np.arange(2 * 4096, dtype=np.int64).astype(np.int8).reshape(
        2, 4096)
    req = m.build_request(passthrough(), {"in": blocks})
    assert req.model_name == "passthrough"
    assert [(t.name, t.datatype, list(t.shape)) for t in req.inputs] == [
        ("in", "INT8", [2, 4096])]
    assert req.raw_input_contents == [blocks.tobytes()]

    x = made_up()
    req = m.build_request(x, {"c": np.zeros((2, 1), np.float32),
                              "a": [[1, 2, 3], [4, 5, 6]],  # list -> INT16
                              "b": np.ones((2, 2, 2), np.int8)},
                          {"gain": 1, "steps": 3.0, "causal": True,
                           "timeout": 500})
    assert [t.name for t in req.inputs] == ["a", "b", "c"]
    assert np.frombuffer(req.raw_input_contents[0], "<i2").tolist() == [
        1, 2, 3, 4, 5, 6]
    assert req.parameters["gain"].WhichOneof("parameter_choice") == \
        "double_param" and req.parameters["gain"].double_param == 1.0
    assert req.parameters["steps"].int64_param == 3
    assert req.parameters["causal"].bool_param is True
    assert req.parameters["timeout"].int64_param == 500  # Triton's, undeclared


@pytest.mark.parametrize("inputs,says", [
    ({"a": np.zeros((1, 3), np.int16), "b": np.zeros((1, 2, 2), np.int8)},
     "'c' is missing"),
    ({"a": np.zeros((1, 3), np.int16), "b": np.zeros((1, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32), "d": 1}, "no input 'd'"),
    ({"a": np.zeros((1, 3), np.float32), "b": np.zeros((1, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32)}, "takes INT16"),
    ({"a": np.zeros((1, 4), np.int16), "b": np.zeros((1, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32)}, r"takes \[N, 3\]"),
    ({"a": np.zeros((1, 3), np.int16), "b": np.zeros((2, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32)}, "the same N"),
    ({"a": np.zeros((0, 3), np.int16), "b": np.zeros((0, 2, 2), np.int8),
      "c": np.zeros((0, 1), np.float32)}, "N >= 1"),
    ({"a": [[1.5, 2, 3]], "b": np.zeros((1, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32)}, "is float64"),
    ({"a": [[70000, 2, 3]], "b": np.zeros((1, 2, 2), np.int8),
      "c": np.zeros((1, 1), np.float32)}, "is int64"),
])
def test_each_mistake_is_named(inputs, says):
    with pytest.raises(ValueError, match=says):
        m.build_request(made_up(), inputs)


def test_no_inputs_lists_what_the_model_takes():
    with pytest.raises(ValueError, match="needs inputs .*: a, b, c"):
        m.build_request(made_up(), None)


def test_parameters_of_the_wrong_type_are_refused():
    ok = {"a": np.zeros((1, 3), np.int16), "b": np.zeros((1, 2, 2), np.int8),
          "c": np.zeros((1, 1), np.float32)}
    with pytest.raises(ValueError, match="'gain' is double"):
        m.build_request(made_up(), ok, {"gain": "loud"})
    with pytest.raises(ValueError, match="'steps' is int64"):
        m.build_request(made_up(), ok, {"steps": 2.5})
    with pytest.raises(ValueError, match="'causal' is bool"):
        m.build_request(made_up(), ok, {"causal": 1})
    req = m.build_request(made_up(), ok, {"x": 0.5, "y": "s", "z": False})
    assert req.parameters["x"].double_param == 0.5
    assert req.parameters["y"].string_param == "s"
    assert req.parameters["z"].WhichOneof("parameter_choice") == "bool_param"


def test_variable_item_dims_take_any_size():
    info = npuk.ModelInfo.from_proto(
        _meta("seq", [("q", "INT8", [-1, -1, 4])], []), _config())
    req = m.build_request(info, {"q": np.zeros((2, 3, 4), np.int8)})
    assert list(req.inputs[0].shape) == [2, 3, 4]
    with pytest.raises(ValueError, match="fixed dims"):
        npuk.random_inputs(info, 1)


def test_random_inputs_are_deterministic_and_in_half_the_range():
    x = made_up()
    r = npuk.random_inputs(x, 5)
    assert {k: (v.dtype, v.shape) for k, v in r.items()} == {
        "a": (np.int16, (5, 3)), "b": (np.int8, (5, 2, 2)),
        "c": (np.float32, (5, 1))}
    assert r["b"].min() >= -64 and r["b"].max() <= 63
    assert np.all(np.abs(r["c"]) <= 1)
    np.testing.assert_array_equal(npuk.random_inputs(x, 5)["a"], r["a"])
    assert not np.array_equal(npuk.random_inputs(x, 5, seed=8)["a"], r["a"])
    m.build_request(x, r)  # a valid request
    with pytest.raises(ValueError):
        npuk.random_inputs(x, 0)


def test_outputs_are_checked_and_shaped():
    resp = pb.ModelInferResponse(model_name="made_up")
    resp.outputs.add(name="y", datatype="FP32", shape=[2, 5])
    y = np.arange(10, dtype=np.float32)
    resp.raw_output_contents.append(y.tobytes())
    out = m.outputs_of(resp)
    assert out["y"].shape == (2, 5) and out["y"].dtype == np.float32
    np.testing.assert_array_equal(out["y"].ravel(), y)
    resp.raw_output_contents[0] = y.tobytes()[:-4]
    with pytest.raises(npuk.NpukError) as e:
        m.outputs_of(resp)
    assert e.value.code == grpc.StatusCode.INTERNAL
    assert "expected 40" in e.value.message
    del resp.raw_output_contents[:]
    with pytest.raises(npuk.NpukError):
        m.outputs_of(resp)
