"""npuk.AsyncClient over system shared memory against a real npukd (path in
$NPUKD): the daemon reads the inputs from and writes the output into the
client's regions (seen in the requests sent, the daemon's region status and
the objects' bytes), answers equal plain gRPC byte for byte, the off
switches, 64 concurrent coroutines, cancellation, and nothing left behind
after close()."""

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import subprocess
import tempfile
import time

import grpc
import numpy as np
import pytest

import npuk
import npuk.shm
from npuk._proto import grpc_service_pb2 as pb
from npuk._proto import grpc_service_pb2_grpc as pb_grpc

DAEMON = os.environ.get("NPUKD")


def _die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def _daemon(*flags):
    if not DAEMON:
        pytest.skip("set NPUKD to the npukd binary (ctest does)")
    with tempfile.TemporaryDirectory(prefix="npuk-aio-shm-") as d:
        target = "unix:" + os.path.join(d, "npukd.sock")
        log = open(os.path.join(d, "npukd.log"), "w+")
        proc = subprocess.Popen([DAEMON, "--listen=" + target,
                                 "--backend=cpu", *flags],
                                stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        try:
            with npuk.Client(target, timeout=1.0, shared_memory=False) as c:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, "npukd exited:\n" + open(
                        log.name).read()
                    try:
                        if c.health() == "SERVING":
                            break
                    except npuk.NpukError:
                        pass
                    assert time.monotonic() < deadline, open(log.name).read()
                    time.sleep(0.05)
            yield target
            assert proc.poll() is None, "npukd died:\n" + open(
                log.name).read()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


@pytest.fixture(scope="module")
def target():
    with _daemon() as t:
        yield t


@pytest.fixture(scope="module")
def slow_target():
    # Every mel device run takes 50 ms more: requests are surely in flight
    # when the test cancels them.
    with _daemon("--fault=mel:slow") as t:
        yield t


def _regions(target):
    """{name: key} of the regions the daemon has registered."""
    channel = grpc.insecure_channel(target)
    try:
        resp = pb_grpc.GRPCInferenceServiceStub(
            channel).SystemSharedMemoryStatus(
                pb.SystemSharedMemoryStatusRequest(), timeout=10)
        return {name: r.key for name, r in resp.regions.items()}
    finally:
        channel.close()


def _our_objects():
    prefix = "npuk_%d_" % os.getpid()
    return {f for f in os.listdir("/dev/shm") if f.startswith(prefix)}


def _param(params, key):
    if key not in params:
        return None
    p = params[key]
    return p.string_param if key == "shared_memory_region" else p.int64_param


class _Spy:
    """Wraps the client's ModelInfer to record what was sent and how each
    call ended: events [(kind, region or None)], kind sent/done/cancelled/
    failed."""

    def __init__(self, client):
        self.events = []
        self.requests = []
        orig = client._stub.ModelInfer

        async def call(request, timeout=None):
            region = (_param(request.inputs[0].parameters,
                             "shared_memory_region")
                      if request.inputs else None)
            self.requests.append(request)
            self.events.append(("sent", region))
            try:
                resp = await orig(request, timeout=timeout)
            except asyncio.CancelledError:
                self.events.append(("cancelled", region))
                raise
            except grpc.RpcError:
                self.events.append(("failed", region))
                raise
            self.events.append(("done", region))
            return resp

        client._stub.ModelInfer = call


async def _drain(client):
    """Waits for the transport's background unregistrations."""
    while client._shm._tasks:
        await asyncio.gather(*list(client._shm._tasks),
                             return_exceptions=True)


def _audio():
    t = np.arange(48000) / 16000.0
    return (0.3 * np.sin(2 * np.pi * 440 * t) *
            np.exp(-t)).astype(np.float32)


def test_aio_client_sends_tensors_through_shared_memory(target):
    rng = np.random.default_rng(1)
    frames = rng.integers(-32768, 32767, size=(100, 400), dtype=np.int16)
    q, k, v = (rng.integers(-128, 127, size=(3, 64, 64), dtype=np.int8)
               for _ in range(3))
    audio = _audio()
    with npuk.Client(target, shared_memory=False) as plain:
        want_mel = plain.mel(frames)
        want_att = plain.attention_int8(q, k, v, 0.1)
        want_any = plain.infer("mel128", {"audio": frames})["log_mel"]
        want_lm = plain.log_mel_spectrogram(audio, as_numpy=True)
    before = _our_objects()
    assert not any(n.startswith("npuk_%d_" % os.getpid())
                   for n in _regions(target))

    async def run():
        async with npuk.AsyncClient(target) as c:
            assert c._shm is not None and c._shm.active
            spy = _Spy(c)
            got = await c.mel(frames)
            assert got.tobytes() == want_mel.tobytes()
            # What went out: no input bytes in the message, one region for
            # the input and the output.
            sent = spy.requests[-1]
            assert len(sent.raw_input_contents) == 0
            region = _param(sent.inputs[0].parameters,
                            "shared_memory_region")
            assert region and region.startswith("npuk_%d_" % os.getpid())
            assert _param(sent.inputs[0].parameters,
                          "shared_memory_byte_size") == frames.nbytes
            assert _param(sent.outputs[0].parameters,
                          "shared_memory_region") == region
            # The daemon has that region registered, and the output it
            # returned is the bytes it wrote into the object.
            assert _regions(target).get(region) == "/" + region
            assert region in _our_objects()
            out_offset = _param(sent.outputs[0].parameters,
                                "shared_memory_offset")
            with open(os.path.join("/dev/shm", region), "rb") as f:
                f.seek(out_offset)
                assert f.read(want_mel.nbytes) == want_mel.tobytes()
            assert c.last_timing.backend == "cpu"

            got = await c.attention_int8(q, k, v, 0.1)
            assert got.tobytes() == want_att.tobytes()
            got = (await c.infer("mel128", {"audio": frames}))["log_mel"]
            assert got.tobytes() == want_any.tobytes()
            got = await c.log_mel_spectrogram(audio, as_numpy=True)
            assert got.tobytes() == want_lm.tobytes()
            assert all(len(r.raw_input_contents) == 0 for r in spy.requests)
            assert c._shm.requests == 4 and c._shm.fallbacks == 0
            names, free = c._shm.regions()
            assert sorted(names) == sorted(free) and len(names) >= 1
            return names

    names = asyncio.run(run())
    # close() unregistered the regions and removed the objects.
    assert _our_objects() == before
    assert not set(names) & set(_regions(target))


def test_aio_errors_are_those_of_plain_grpc(target):
    # Shape [2, 400] but 3 frames of bytes: the daemon refuses it.
    bad = pb.ModelInferRequest(model_name="mel")
    t = bad.inputs.add(name="audio", datatype="INT16", shape=[2, 400])
    bad.raw_input_contents.append(np.zeros((3, 400), np.int16).tobytes())
    with npuk.Client(target, shared_memory=False) as plain:
        with pytest.raises(npuk.NpukError) as want:
            plain.infer(bad)
        with pytest.raises(npuk.NpukError) as want_model:
            plain.infer("no_such_model", {"x": np.zeros(3, np.int8)})
    assert t.name == "audio"

    async def run():
        async with npuk.AsyncClient(target) as c:
            await c.mel(np.zeros((2, 400), np.int16))  # a region exists
            with pytest.raises(npuk.NpukError) as got:
                await c.infer(bad)
            assert (got.value.code, got.value.message) == (
                want.value.code, want.value.message)
            with pytest.raises(npuk.NpukError) as got:
                await c.infer("no_such_model", {"x": np.zeros(3, np.int8)})
            assert (got.value.code, got.value.message) == (
                want_model.value.code, want_model.value.message)
            # A refused request gives its region back, nothing leaks.
            names, free = c._shm.regions()
            assert names and sorted(names) == sorted(free)
            assert (await c.mel(np.ones((2, 400), np.int16))).shape == (2, 80)

    asyncio.run(run())


def test_aio_off_switches_and_refusal(target, monkeypatch, tmp_path):
    frames = np.arange(5 * 400, dtype=np.int16).reshape(5, 400)
    with npuk.Client(target, shared_memory=False) as plain:
        want = plain.mel(frames).tobytes()

    async def plain_run(**kw):
        async with npuk.AsyncClient(target, **kw) as c:
            assert c._shm is None
            spy = _Spy(c)
            assert (await c.mel(frames)).tobytes() == want
            assert len(spy.requests[0].raw_input_contents) == 1
            assert not spy.requests[0].inputs[0].parameters

    before = _our_objects()
    asyncio.run(plain_run(shared_memory=False))
    monkeypatch.setenv("NPUK_SHM", "0")
    asyncio.run(plain_run())
    monkeypatch.setenv("NPUK_SHM", "off")
    asyncio.run(plain_run())
    monkeypatch.delenv("NPUK_SHM")

    async def remote():
        c = npuk.AsyncClient("10.1.2.3:1", timeout=0.1)
        assert c._shm is None
        await c.close()

    asyncio.run(remote())

    # A daemon that cannot open the client's object (here: the object is
    # not where shm_open looks) refuses the registration; the client goes
    # plain for good, with the daemon's reason.
    monkeypatch.setattr(npuk.shm, "SHM_DIR", str(tmp_path))

    async def refused():
        async with npuk.AsyncClient(target) as c:
            assert (await c.mel(frames)).tobytes() == want
            assert not c._shm.active
            assert "NOT_FOUND" in c._shm.disabled_reason
            assert (await c.mel(frames)).tobytes() == want
            assert c._shm.requests == 0 and c._shm.fallbacks == 2

    asyncio.run(refused())
    assert os.listdir(tmp_path) == []
    assert _our_objects() == before


def test_aio_64_concurrent_coroutines(target):
    rng = np.random.default_rng(7)
    jobs = []
    for i in range(64):
        if i % 4 == 3:
            q, k, v = (rng.integers(-128, 127, size=(1 + i % 3, 64, 64),
                                    dtype=np.int8) for _ in range(3))
            jobs.append(("att", (q, k, v)))
        else:
            n = int(rng.integers(1, 200))
            jobs.append(("mel", rng.integers(-32768, 32767, size=(n, 400),
                                             dtype=np.int16)))
    with npuk.Client(target, shared_memory=False) as plain:
        want = [plain.mel(x).tobytes() if kind == "mel" else
                plain.attention_int8(*x, 0.125).tobytes()
                for kind, x in jobs]
    before = _our_objects()

    async def one(c, kind, x):
        out = await (c.mel(x) if kind == "mel" else c.attention_int8(*x))
        return out.tobytes()

    async def run():
        async with npuk.AsyncClient(target) as c:
            spy = _Spy(c)
            for _ in range(2):
                got = await asyncio.gather(*(one(c, kind, x)
                                             for kind, x in jobs))
                assert got == want
            # Every request either went through a region of its own or
            # plainly; none shared a region with another in flight.
            lent = set()
            for kind, region in spy.events:
                if region is None:
                    continue
                if kind == "sent":
                    assert region not in lent, region
                    lent.add(region)
                else:
                    lent.discard(region)
            assert c._shm.requests + c._shm.fallbacks == 128
            assert c._shm.requests >= npuk.shm.MAX_REGIONS
            names, free = c._shm.regions()
            assert sorted(names) == sorted(free)
            assert 1 <= len(names) <= npuk.shm.MAX_REGIONS
            assert set(names) <= set(_regions(target))

    asyncio.run(run())
    assert _our_objects() == before


def test_aio_cancelled_requests_never_reuse_their_region(slow_target):
    target = slow_target
    rng = np.random.default_rng(3)
    inputs = [rng.integers(-32768, 32767, size=(20 + i, 400), dtype=np.int16)
              for i in range(64)]
    with npuk.Client(target, shared_memory=False) as plain:
        want = [plain.mel(x).tobytes() for x in inputs]
    before = _our_objects()

    async def run():
        async with npuk.AsyncClient(target) as c:
            spy = _Spy(c)
            assert (await c.mel(inputs[0])).tobytes() == want[0]
            # One request cancelled while the daemon runs it.
            task = asyncio.ensure_future(c.mel(inputs[1]))
            while len(spy.events) < 3:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.01)
            assert spy.events[-1][0] == "sent"
            cancelled_region = spy.events[-1][1]
            assert cancelled_region
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert spy.events[-1] == ("cancelled", cancelled_region)
            # Out of the pool and off the disk at once, unregistered soon.
            assert cancelled_region not in c._shm.regions()[0]
            assert cancelled_region not in _our_objects()
            await _drain(c)
            assert cancelled_region not in _regions(target)

            # 64 at once, half of them cancelled at random moments (before
            # the registration, during it, while the daemon runs them).
            tasks = [asyncio.ensure_future(c.mel(x)) for x in inputs]
            victims = random.Random(5).sample(range(64), 32)
            for i in victims:
                await asyncio.sleep(random.Random(i).uniform(0, 0.004))
                tasks[i].cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for i, r in enumerate(results):
                if isinstance(r, BaseException):
                    assert i in victims and isinstance(
                        r, asyncio.CancelledError), r
                else:
                    assert r.tobytes() == want[i], i
            assert any(isinstance(results[i], asyncio.CancelledError)
                       for i in victims)
            # A region whose request was cancelled is never sent again.
            dead = set()
            for kind, region in spy.events:
                if kind == "sent":
                    assert region not in dead, region
                elif kind == "cancelled" and region:
                    dead.add(region)
            await _drain(c)
            names, free = c._shm.regions()
            assert sorted(names) == sorted(free)
            assert cancelled_region in dead
            assert not dead & set(names)
            assert not dead & set(_regions(target))
            assert not dead & _our_objects()
            # The pool still works, every answer right.
            got = await asyncio.gather(*(c.mel(x) for x in inputs))
            assert [g.tobytes() for g in got] == want
            return names

    names = asyncio.run(run())
    assert _our_objects() == before
    assert not set(names) & set(_regions(target))


def test_aio_close_with_requests_in_flight_leaves_nothing(slow_target):
    target = slow_target
    frames = np.ones((50, 400), np.int16)
    before = _our_objects()

    async def run():
        c = npuk.AsyncClient(target)
        await c.mel(frames)
        spy = _Spy(c)
        tasks = [asyncio.ensure_future(c.mel(frames)) for _ in range(16)]
        while sum(1 for k, _ in spy.events if k == "sent") < 4:
            await asyncio.sleep(0.001)
        await c.close()
        # Nothing on disk as soon as close() returns, and the daemon has
        # none of the client's regions.
        assert _our_objects() == before
        assert not any(n.startswith("npuk_%d_" % os.getpid())
                       for n in _regions(target))
        await asyncio.gather(*tasks, return_exceptions=True)
        assert _our_objects() == before

    asyncio.run(run())


def test_sync_client_retires_a_region_past_its_deadline(slow_target):
    # The synchronous client shares the rule: a call that timed out while
    # the daemon ran it does not lend its region again.
    frames = np.ones((10, 400), np.int16)
    before = _our_objects()
    with npuk.Client(slow_target) as c:
        want = c.mel(frames).tobytes()
        (first,), _ = c._shm.regions()
        with pytest.raises(npuk.NpukError) as e:
            c.mel(frames, timeout=0.01)
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert c._shm.regions() == ([], [])
        assert first not in _our_objects()
        assert c.mel(frames).tobytes() == want
        (second,), _ = c._shm.regions()
        assert second != first
    assert _our_objects() == before
    assert first not in _regions(slow_target)
