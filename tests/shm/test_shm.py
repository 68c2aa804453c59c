"""Triton's system shared-memory extension against a real npukd: register,
status, unregister; every model's inputs and outputs through regions,
byte-identical to plain gRPC; bad regions, offsets, sizes and keys answered
with clear errors; a region unregistered (and unlinked) while a request
uses it; RSS over 10k bad requests; npuk.Client using it on its own."""

import concurrent.futures
import os
import time

import grpc
import numpy as np
import pytest

import npuk
import npuk.shm
import shm_env as env
from npuk._proto import grpc_service_pb2 as pb

pytestmark = pytest.mark.skipif(not env.DAEMON,
                                reason="set NPUKD to the npukd binary "
                                       "(ctest does)")


@pytest.fixture(scope="module")
def daemon():
    # passthrough waits up to 1 s for a fuller batch, so a request stays
    # queued long enough to unregister its region under it.
    with env.daemon("--max_queue_delay_us=passthrough:1000000") as d:
        yield d


@pytest.fixture
def s(daemon):
    return env.stub(daemon[0])


@pytest.fixture
def shm_obj():
    objs = []

    def make(size):
        o = env.ShmObject(size)
        objs.append(o)
        return o
    yield make
    for o in objs:
        o.close()


def code_of(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), e.value.details()


def test_register_status_unregister(s, shm_obj):
    o = shm_obj(3 * 4096)
    env.register(s, "a", o.key, 0, 4096)
    env.register(s, "b", o.key[1:], 4096 + 5, 1000)  # key without the slash
    regions = env.status(s)
    assert set(regions) == {"a", "b"}
    assert (regions["b"].name, regions["b"].key, regions["b"].offset,
            regions["b"].byte_size) == ("b", o.key[1:], 4096 + 5, 1000)
    assert set(env.status(s, "a")) == {"a"}
    code, msg = code_of(lambda: env.status(s, "nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in msg
    code, msg = code_of(lambda: env.register(s, "a", o.key, 0, 1))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "unregister" in msg
    env.unregister(s, "a")
    env.unregister(s, "a")  # absent: fine, as in Triton
    assert set(env.status(s)) == {"b"}
    env.unregister(s)  # all
    assert len(env.status(s)) == 0
    meta = s.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    assert "system_shared_memory" in meta.extensions


def _plain(s, model, inputs):
    return s.ModelInfer(env.request(model, inputs), timeout=30)


def test_every_model_through_shared_memory_is_byte_identical(s, shm_obj):
    checked = []
    for model, meta in env.models(s):
        if model == "log_mel":  # [S] audio, not [N, ...] items: below
            continue
        # attention: [3, 100, 64] sequences, which its host model runs
        # (tile requests are [N, 64, 64]).
        inputs = env.random_inputs(meta, 3, seed=len(checked), length=100)
        if inputs is None:
            continue
        plain = _plain(s, model, inputs)
        want = plain.raw_output_contents[0]
        out_name = meta.outputs[0].name
        o = shm_obj(1 << 20)
        # A region that starts at an unaligned offset of its object.
        base = 4096 + 3
        env.register(s, "r_" + model, o.key, base, (1 << 20) - base)
        offset, places = 17, {}
        for name, (_, a) in inputs.items():
            o.write(base + offset, a.tobytes())
            places[name] = ("r_" + model, offset)
            offset += a.nbytes + 5
        out_at = offset + 11
        # Everything in shared memory.
        resp = s.ModelInfer(env.request(
            model, inputs, places,
            ("%s" % out_name, "r_" + model, out_at, len(want) + 100)),
            timeout=30)
        assert len(resp.raw_output_contents) == 0, model
        assert list(resp.outputs[0].shape) == list(plain.outputs[0].shape)
        p = resp.outputs[0].parameters
        assert p["shared_memory_region"].string_param == "r_" + model
        assert p["shared_memory_byte_size"].int64_param == len(want)
        assert o.read(base + out_at, len(want)) == want, model
        # Inputs in shared memory, output plain.
        resp = s.ModelInfer(env.request(model, inputs, places), timeout=30)
        assert resp.raw_output_contents[0] == want, model
        # Inputs plain, output in shared memory.
        o.write(base + out_at, b"\0" * len(want))
        resp = s.ModelInfer(env.request(
            model, inputs, None, (out_name, "r_" + model, out_at, len(want))),
            timeout=30)
        assert o.read(base + out_at, len(want)) == want, model
        # Mixed: the first input in shared memory, the others raw.
        first = next(iter(inputs))
        resp = s.ModelInfer(env.request(model, inputs,
                                        {first: places[first]}), timeout=30)
        assert resp.raw_output_contents[0] == want, model
        # The streaming RPC takes the same requests.
        stream = s.ModelStreamInfer(iter([env.request(model, inputs,
                                                      places)]), timeout=30)
        answers = list(stream)
        assert answers[0].error_message == ""
        assert answers[0].infer_response.raw_output_contents[0] == want
        env.unregister(s, "r_" + model)
        checked.append(model)
    print("models checked through shared memory:", checked)
    assert {"mel", "attention", "passthrough"} <= set(checked)


def test_host_model_log_mel_through_shared_memory(s, shm_obj):
    names = [m for m, _ in env.models(s)]
    if "log_mel" not in names:
        pytest.skip("this daemon serves no log_mel model")
    audio = (np.sin(np.arange(16000) * 0.05) * 8000).astype(np.int16)
    req = pb.ModelInferRequest(model_name="log_mel")
    req.inputs.add(name="audio", datatype="INT16", shape=[audio.size])
    req.raw_input_contents.append(audio.tobytes())
    plain = s.ModelInfer(req, timeout=30)
    want = plain.raw_output_contents[0]
    out_name = plain.outputs[0].name
    o = shm_obj(1 << 20)
    env.register(s, "lm", o.key, 0, 1 << 20)
    o.write(64, audio.tobytes())
    shm_req = env.request("log_mel", {"audio": ("INT16", audio)},
                          {"audio": ("lm", 64)},
                          (out_name, "lm", 1 << 19, 1 << 19))
    resp = s.ModelInfer(shm_req, timeout=30)
    assert len(resp.raw_output_contents) == 0
    assert o.read(1 << 19, len(want)) == want
    env.unregister(s, "lm")


def _mel_inputs(n=2):
    a = np.arange(n * 400, dtype=np.int16).reshape(n, 400)
    return {"audio": ("INT16", a)}


def _bad_requests(region, key):
    """(description, call on a stub, expected code, text in the message)."""
    ins = _mel_inputs()
    nbytes = ins["audio"][1].nbytes
    big = 2 ** 63 - 1

    def infer(req):
        return lambda s: s.ModelInfer(req, timeout=10)

    def with_param(name, value):
        req = env.request("mel", ins, {"audio": (region, 0)})
        p = req.inputs[0].parameters[name]
        p.Clear()
        if isinstance(value, str):
            p.string_param = value
        else:
            p.int64_param = value
        return req

    def without(name):
        req = env.request("mel", ins, {"audio": (region, 0)})
        del req.inputs[0].parameters[name]
        return req

    INV = grpc.StatusCode.INVALID_ARGUMENT
    return [
        ("unknown region", infer(env.request("mel", ins,
                                             {"audio": ("nope", 0)})),
         INV, "not registered"),
        ("offset past region", infer(env.request("mel", ins,
                                                 {"audio": (region, 4000)})),
         INV, "past the end"),
        ("offset at int64 max", infer(with_param("shared_memory_offset",
                                                 big)), INV, "past the end"),
        ("negative offset", infer(with_param("shared_memory_offset", -1)),
         INV, "non-negative"),
        ("byte size not the tensor's",
         infer(with_param("shared_memory_byte_size", nbytes - 1)), INV,
         "is %d bytes" % nbytes),
        ("no byte size", infer(without("shared_memory_byte_size")), INV,
         "no shared_memory_byte_size"),
        ("no region", infer(without("shared_memory_region")), INV,
         "no shared_memory_region"),
        ("region not a string", infer(with_param("shared_memory_region", 3)),
         INV, "no shared_memory_region"),
        ("output range past region",
         infer(env.request("mel", ins, None, ("log_mel", region, 4000, 200))),
         INV, "past the end"),
        ("output range too small",
         infer(env.request("mel", ins, None, ("log_mel", region, 0, 10))),
         INV, "need 160 bytes"),
        ("raw entries for shm inputs", infer(_raw_too(ins, region)), INV,
         "not in shared memory"),
        ("long region name", infer(env.request(
            "mel", ins, {"audio": ("x" * 100000, 0)})), INV, "(100000 bytes)"),
        ("register unknown key", lambda s: env.register(
            s, "k", "/npuk_no_such_object", 0, 10),
         grpc.StatusCode.NOT_FOUND, "create it first"),
        ("register past the object", lambda s: env.register(
            s, "k", key, 0, 1 << 30), INV, "past the end"),
        ("register offset overflow", lambda s: env.register(
            s, "k", key, 2 ** 64 - 1, 2), INV, "overflows"),
        ("register zero bytes", lambda s: env.register(s, "k", key, 0, 0),
         INV, "byte_size is 0"),
        ("register long key", lambda s: env.register(
            s, "k", "/" + "z" * 5000, 0, 1), INV, "(5001 bytes)"),
        ("register existing", lambda s: env.register(s, region, key, 0, 1),
         grpc.StatusCode.ALREADY_EXISTS, "already registered"),
    ]


def _raw_too(ins, region):
    req = env.request("mel", ins, {"audio": (region, 0)})
    req.raw_input_contents.append(ins["audio"][1].tobytes())
    return req


def test_bad_input_is_refused_clearly(s, daemon, shm_obj):
    o = shm_obj(4096)
    env.register(s, "bad", o.key, 0, 4096)
    for what, call, code, says in _bad_requests("bad", o.key):
        got, msg = code_of(lambda: call(s))
        assert got == code and says in msg, (what, got, msg)
        assert len(msg) < 1000, (what, len(msg))
    assert set(env.status(s)) == {"bad"}
    env.unregister(s, "bad")


def test_truncated_object_is_an_error_not_a_crash(s, daemon, shm_obj):
    o = shm_obj(64 * 1024)
    env.register(s, "trunc", o.key, 0, 64 * 1024)
    ins = _mel_inputs(8)
    o.truncate(4096)  # the client shrinks its object under the registration
    code, msg = code_of(lambda: s.ModelInfer(env.request(
        "mel", ins, {"audio": ("trunc", 8192)}), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in msg
    code, msg = code_of(lambda: s.ModelInfer(env.request(
        "mel", ins, None, ("log_mel", "trunc", 8192, 4096)), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "truncated" in msg
    env.unregister(s, "trunc")
    assert daemon[1].poll() is None


def test_region_unregistered_and_unlinked_while_in_use(s, shm_obj):
    n = 4
    data = (np.arange(n * 4096) % 251).astype(np.int8).reshape(n, 4096)
    ins = {"in": ("INT8", data)}
    # passthrough holds a request ~1 s in its queue (the fixture's
    # max_queue_delay_us), long enough to pull the region from under it.
    # Should the unregister still overtake the request on a loaded
    # machine, the request is refused cleanly; try again.
    for attempt in range(3):
        o = shm_obj(1 << 20)
        env.register(s, "inuse", o.key, 0, 1 << 20)
        o.write(0, data.tobytes())
        future = s.ModelInfer.future(env.request(
            "passthrough", ins, {"in": ("inuse", 0)},
            ("out", "inuse", 1 << 19, data.nbytes)), timeout=30)
        time.sleep(0.3)
        env.unregister(s, "inuse")
        os.unlink(o.path)  # the daemon's mapping keeps the memory
        assert len(env.status(s)) == 0
        try:
            resp = future.result()
        except grpc.RpcError as e:
            assert "not registered" in e.details(), e.details()
            continue
        assert len(resp.raw_output_contents) == 0
        assert o.read(1 << 19, data.nbytes) == data.tobytes()
        break
    else:
        pytest.fail("the unregister overtook the request 3 times")
    # A request naming it now is refused.
    code, msg = code_of(lambda: s.ModelInfer(env.request(
        "passthrough", ins, {"in": ("inuse", 0)}), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "not registered" in msg


def test_concurrent_unregister_register_under_load(s, daemon, shm_obj):
    o = shm_obj(1 << 16)
    ins = _mel_inputs(4)
    o.write(0, ins["audio"][1].tobytes())
    want = _plain(s, "mel", ins).raw_output_contents[0]
    env.register(s, "churn", o.key, 0, 1 << 16)
    outcomes = {"ok": 0, "unregistered": 0}

    def one(i):
        try:
            r = s.ModelInfer(env.request("mel", ins, {"audio": ("churn", 0)}),
                             timeout=30)
            assert r.raw_output_contents[0] == want
            return "ok"
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e.details()
            assert "not registered" in e.details()
            return "unregistered"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(400)]
        for i in range(100):
            env.unregister(s, "churn")
            env.register(s, "churn", o.key, 0, 1 << 16)
        for f in futures:
            outcomes[f.result()] += 1
    print("churn outcomes:", outcomes)
    assert outcomes["ok"] > 0
    env.unregister(s, "churn")
    assert daemon[1].poll() is None


def test_rss_flat_over_10k_bad_requests(s, daemon, shm_obj):
    o = shm_obj(4096)
    env.register(s, "rss", o.key, 0, 4096)
    cases = _bad_requests("rss", o.key)
    pid = daemon[1].pid

    def run(count):
        def one(i):
            _, call, code, _ = cases[i % len(cases)]
            try:
                call(s)
            except grpc.RpcError as e:
                assert e.code() == code
                return
            raise AssertionError("accepted: %s" % cases[i % len(cases)][0])
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(count)))

    run(2000)  # warm-up: allocator arenas, gRPC's buffers
    before = env.rss_kib(pid)
    run(10000)
    after = env.rss_kib(pid)
    print("npukd RSS over 10000 bad shared-memory requests: %d KiB -> %d "
          "KiB (%+d KiB)" % (before, after, after - before))
    assert after - before < 8 * 1024, (before, after)
    assert set(env.status(s)) == {"rss"}
    env.unregister(s, "rss")


def _shm_files():
    return {f for f in os.listdir("/dev/shm") if f.startswith(
        "npuk_%d_" % os.getpid())}


def test_npuk_client_uses_shared_memory_on_a_local_daemon(daemon, s):
    target = daemon[0]
    rng = np.random.default_rng(5)
    frames = rng.integers(-32768, 32767, size=(100, 400), dtype=np.int16)
    q, k, v = (rng.integers(-128, 127, size=(2, 64, 64), dtype=np.int8)
               for _ in range(3))
    with npuk.Client(target, shared_memory=False) as plain:
        want_mel = plain.mel(frames)
        want_att = plain.attention_int8(q, k, v, 0.1)
        want_any = plain.infer("mel128", {"audio": frames})
    before = _shm_files()
    with npuk.Client(target) as c:
        assert c._shm is not None and c._shm.active
        assert np.array_equal(c.mel(frames), want_mel)
        assert np.array_equal(c.attention_int8(q, k, v, 0.1), want_att)
        got = c.infer("mel128", {"audio": frames})
        assert got["log_mel"].tobytes() == want_any["log_mel"].tobytes()
        assert c._shm.requests == 3 and c._shm.fallbacks == 0
        assert len(env.status(s)) >= 1 and _shm_files() - before
        # Someone unregisters every region: the next call still answers
        # (plainly), and the one after registers a new region.
        env.unregister(s)
        assert np.array_equal(c.mel(frames), want_mel)
        assert np.array_equal(c.mel(frames), want_mel)
        assert c._shm.requests == 4 and c._shm.fallbacks == 1
    # close() unregistered and removed its objects.
    assert _shm_files() == before
    assert len(env.status(s)) == 0


def test_npuk_client_off_switch_and_fallback(daemon, monkeypatch, tmp_path):
    target = daemon[0]
    frames = np.zeros((3, 400), np.int16)
    monkeypatch.setenv("NPUK_SHM", "0")
    with npuk.Client(target) as c:
        assert c._shm is None
        want = c.mel(frames)
    monkeypatch.delenv("NPUK_SHM")
    assert npuk.shm.is_local_target("127.0.0.1:8001")
    assert npuk.shm.is_local_target("[::1]:8001")
    assert not npuk.shm.is_local_target("10.1.2.3:8001")
    with npuk.Client("10.1.2.3:1", timeout=0.1) as remote:
        assert remote._shm is None
    # A daemon that cannot open the client's object (here: the object is
    # not where shm_open looks) refuses the registration; the client goes
    # plain for good.
    monkeypatch.setattr(npuk.shm, "SHM_DIR", str(tmp_path))
    with npuk.Client(target) as c:
        assert np.array_equal(c.mel(frames), want)
        assert not c._shm.active and "NOT_FOUND" in c._shm.disabled_reason
        assert np.array_equal(c.mel(frames), want)
    assert os.listdir(tmp_path) == []
