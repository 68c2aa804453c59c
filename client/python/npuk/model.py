"""What a served model takes and returns, as the daemon describes it in
ModelMetadata and ModelConfig, and the requests built from that description.
Client.infer(model, inputs) goes through here, so it works for every model
the daemon serves without naming one:

    info = c.model_info("passthrough")   # inputs, outputs, parameters
    out = c.infer("passthrough", {"in": np.zeros((2, 4096), np.int8)})
    out["out"]                            # int8 [2, 4096]
"""

import re
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

import grpc
import numpy as np
from numpy.typing import ArrayLike

from ._common import NpukError
from ._proto import grpc_service_pb2 as pb

# KServe v2 datatypes with a numpy equivalent, little-endian on the wire.
DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

_TYPE_WORDS = {
    "double": "double", "float": "double", "fp64": "double",
    "int64": "int64", "int": "int64", "integer": "int64",
    "bool": "bool", "boolean": "bool",
    "string": "string",
}


class TensorInfo(NamedTuple):
    name: str
    datatype: str  # KServe v2 name: "INT8", "FP32", ...
    item_dims: Tuple[int, ...]  # after the leading batch dim; -1 = any

    @property
    def dtype(self) -> np.dtype:
        return DTYPES[self.datatype]


class ParamInfo(NamedTuple):
    name: str
    doc: str  # the daemon's one line: type, default, range
    # "double", "int64", "bool" or "string" when doc names one as a word,
    # else "": the value is then typed by its Python type.
    type: str


class ModelInfo(NamedTuple):
    name: str
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]
    max_items: int  # ModelConfig max_batch_size: items per request
    params: Tuple[ParamInfo, ...]

    @classmethod
    def from_proto(cls, metadata: Any, config: Any) -> "ModelInfo":
        """From a ModelMetadataResponse and a ModelConfigResponse. ValueError
        when a tensor is not [-1, dims...] of a datatype numpy has."""

        def tensor(t):
            if t.datatype not in DTYPES:
                raise ValueError(
                    "model %r tensor %r has datatype %s, which this client "
                    "cannot send as raw bytes" % (metadata.name, t.name,
                                                  t.datatype))
            if len(t.shape) < 1 or t.shape[0] != -1:
                raise ValueError(
                    "model %r tensor %r has shape %s; this client expects a "
                    "variable leading batch dim, [-1, ...]"
                    % (metadata.name, t.name, list(t.shape)))
            return TensorInfo(t.name, t.datatype, tuple(t.shape[1:]))

        params = tuple(
            ParamInfo(name, p.string_value, _type_named_in(p.string_value))
            for name, p in sorted(config.config.parameters.items()))
        return cls(metadata.name, tuple(map(tensor, metadata.inputs)),
                   tuple(map(tensor, metadata.outputs)),
                   config.config.max_batch_size, params)

    def input(self, name: str) -> Optional[TensorInfo]:
        return next((t for t in self.inputs if t.name == name), None)

    def param(self, name: str) -> Optional[ParamInfo]:
        return next((p for p in self.params if p.name == name), None)


def _type_named_in(doc: str) -> str:
    for word in re.split(r"[^A-Za-z0-9_]+", doc):
        if word.lower() in _TYPE_WORDS:
            return _TYPE_WORDS[word.lower()]
    return ""


def _input_names(info):
    return ", ".join(t.name for t in info.inputs)


def _as_input(info, t, value) -> np.ndarray:
    a = np.asarray(value)
    if not isinstance(value, np.ndarray) and a.dtype.kind == t.dtype.kind \
            and np.array_equal(a.astype(t.dtype), a):
        # A list or a tensor of the right kind whose values fit: Python ints
        # are int64 to numpy, and [1, 2] should reach an INT8 input.
        a = a.astype(t.dtype)
    if a.dtype.kind != t.dtype.kind or a.dtype.itemsize != t.dtype.itemsize:
        raise ValueError("input %r is %s; model %r takes %s (numpy %s)"
                         % (t.name, a.dtype, info.name, t.datatype,
                            t.dtype.name))
    want = "[N, %s]" % ", ".join(str(d) for d in t.item_dims) \
        if t.item_dims else "[N]"
    if a.ndim != len(t.item_dims) + 1 or a.shape[0] < 1 or any(
            d != -1 and d != s for d, s in zip(t.item_dims, a.shape[1:])):
        raise ValueError("input %r has shape %s; model %r takes %s with N >= 1 "
                         "(-1 = any)" % (t.name, a.shape, info.name, want))
    return np.ascontiguousarray(a, dtype=t.dtype)


def to_infer_parameter(name: str, value: Any,
                       declared: str = "") -> pb.InferParameter:
    """A Python value as an InferParameter, of the declared type when there
    is one ("double", "int64", "bool", "string")."""
    p = pb.InferParameter()
    is_bool = isinstance(value, (bool, np.bool_))
    is_int = isinstance(value, (int, np.integer)) and not is_bool
    is_float = isinstance(value, (float, np.floating))
    if declared == "double" and (is_int or is_float):
        p.double_param = float(value)
    elif declared == "int64" and (is_int or (is_float and
                                             float(value).is_integer())):
        p.int64_param = int(value)
    elif declared == "bool" and is_bool:
        p.bool_param = bool(value)
    elif declared == "string" and isinstance(value, str):
        p.string_param = value
    elif declared:
        raise ValueError("parameter %r is %s; %r is not" % (name, declared,
                                                             value))
    elif is_bool:
        p.bool_param = bool(value)
    elif is_int:
        p.int64_param = int(value)
    elif is_float:
        p.double_param = float(value)
    elif isinstance(value, str):
        p.string_param = value
    else:
        raise ValueError("parameter %r: %r is neither a bool, an int, a float "
                         "nor a str" % (name, value))
    return p


def build_request(info: ModelInfo,
                  inputs: Optional[Mapping[str, ArrayLike]],
                  parameters: Optional[Mapping[str, Any]] = None
                  ) -> pb.ModelInferRequest:
    """A request for info.name with every input once (in the model's order)
    and `parameters` typed as the model declares them. ValueError, naming
    the tensor, when an input is missing or unknown, of another dtype, of a
    shape that does not fit, or when the inputs disagree on N."""
    if inputs is None:
        raise ValueError("model %r needs inputs {name: array}: %s"
                         % (info.name, _input_names(info)))
    unknown = sorted(set(inputs) - {t.name for t in info.inputs})
    if unknown:
        raise ValueError("model %r has no input %r; its inputs are %s"
                         % (info.name, unknown[0], _input_names(info)))
    req = pb.ModelInferRequest(model_name=info.name)
    n = None
    for t in info.inputs:
        if t.name not in inputs:
            raise ValueError("model %r takes inputs %s; %r is missing"
                             % (info.name, _input_names(info), t.name))
        a = _as_input(info, t, inputs[t.name])
        if n is None:
            n, n_from = a.shape[0], t.name
        elif a.shape[0] != n:
            raise ValueError("input %r has %d items but %r has %d; every input "
                             "of model %r needs the same N"
                             % (t.name, a.shape[0], n_from, n, info.name))
        x = req.inputs.add()
        x.name = t.name
        x.datatype = t.datatype
        x.shape.extend(a.shape)
        req.raw_input_contents.append(a.tobytes())
    for name, value in (parameters or {}).items():
        p = info.param(name)
        req.parameters[name].CopyFrom(
            to_infer_parameter(name, value, p.type if p else ""))
    return req


def outputs_of(resp: Any) -> Dict[str, np.ndarray]:
    """The outputs of a ModelInferResponse by name, as numpy arrays of their
    shape; NpukError(INTERNAL) when one does not hold exactly its shape's
    bytes, so a truncated answer never reaches the caller."""
    if len(resp.raw_output_contents) != len(resp.outputs):
        raise NpukError(grpc.StatusCode.INTERNAL,
                        "daemon returned %d outputs but %d raw contents for %s"
                        % (len(resp.outputs), len(resp.raw_output_contents),
                           resp.model_name))
    out = {}
    for o, raw in zip(resp.outputs, resp.raw_output_contents):
        dtype = DTYPES.get(o.datatype)
        want = int(np.prod(o.shape)) * dtype.itemsize if dtype else -1
        if len(raw) != want or any(d < 0 for d in o.shape):
            raise NpukError(grpc.StatusCode.INTERNAL,
                            "daemon returned %d bytes for output %r %s%s of "
                            "%s, expected %d" % (len(raw), o.name, o.datatype,
                                                 list(o.shape), resp.model_name,
                                                 want))
        out[o.name] = np.frombuffer(raw, dtype=dtype).reshape(tuple(o.shape))
    return out


def random_inputs(info: ModelInfo, items: int,
                  seed: int = 7) -> Dict[str, np.ndarray]:
    """`items` items of deterministic random data for every input: integers
    uniform over half their type's range, floats uniform in [-1, 1). For
    smoke and load tests, where any valid input will do."""
    if items < 1:
        raise ValueError("a request needs at least 1 item; got %d" % items)
    rng = np.random.default_rng(seed)
    out = {}
    for t in info.inputs:
        if any(d < 0 for d in t.item_dims):
            raise ValueError("input %r of model %r has item dims %s; random "
                             "inputs need fixed dims" % (t.name, info.name,
                                                         list(t.item_dims)))
        shape = (items,) + tuple(t.item_dims)
        if t.dtype.kind == "b":
            out[t.name] = rng.integers(0, 2, shape).astype(t.dtype)
        elif t.dtype.kind in "iu":
            hi = np.iinfo(t.dtype).max // 2
            lo = -hi - 1 if t.dtype.kind == "i" else 0
            out[t.name] = rng.integers(lo, hi, shape, dtype=t.dtype,
                                       endpoint=True)
        else:
            out[t.name] = rng.uniform(-1, 1, shape).astype(t.dtype)
    return out
