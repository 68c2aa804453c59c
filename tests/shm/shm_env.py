"""Shared by the shared-memory tests: a real npukd on a temporary unix
socket, gRPC stubs, POSIX shared-memory objects and ModelInfer requests
built from the models' metadata."""

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import tempfile
import time

import grpc
import numpy as np

# npuk's stubs are imported on first use: the tritonclient test loads
# Triton's own model_config.proto, and one process cannot hold both.


def _protos():
    from npuk._proto import grpc_service_pb2 as pb
    from npuk._proto import grpc_service_pb2_grpc as pb_grpc
    from npuk._proto import health_pb2, health_pb2_grpc
    return pb, pb_grpc, health_pb2, health_pb2_grpc

DAEMON = os.environ.get("NPUKD")
NP = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
      "FP32": np.float32}


def _die_with_parent():
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _npuk_serving(target):
    _, _, health_pb2, health_pb2_grpc = _protos()
    channel = grpc.insecure_channel(target)
    try:
        r = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1)
        return r.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


@contextlib.contextmanager
def daemon(*flags, serving=_npuk_serving):
    """Yields (target, proc) of an npukd serving on a temporary socket;
    `serving(target)` says when it is ready."""
    with tempfile.TemporaryDirectory(prefix="npuk-shm-") as d:
        target = "unix:" + os.path.join(d, "npukd.sock")
        log = open(os.path.join(d, "npukd.log"), "w+")
        proc = subprocess.Popen(
            [DAEMON, "--listen=" + target, "--backend=cpu", *flags],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "npukd exited:\n" + open(
                    log.name).read()
                if serving(target):
                    break
                assert time.monotonic() < deadline, open(log.name).read()
                time.sleep(0.05)
            yield target, proc
            assert proc.poll() is None, "npukd died:\n" + open(
                log.name).read()
        finally:
            proc.terminate()
            try:
                rc = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            log.seek(0)
            text = log.read()
            log.close()
        assert rc == 0, "npukd exit status %s:\n%s" % (rc, text[-4000:])


def stub(target):
    _, pb_grpc, _, _ = _protos()
    return pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))


class ShmObject:
    """A POSIX shared-memory object (/dev/shm/NAME), mapped here."""

    def __init__(self, size, name=None):
        import mmap
        self.name = name or "npuk_test_%d_%s" % (os.getpid(),
                                                 secrets.token_hex(4))
        self.key = "/" + self.name
        self.path = "/dev/shm/" + self.name
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, size)
        self.map = mmap.mmap(fd, size)
        os.close(fd)
        self.size = size

    def write(self, offset, data):
        self.map[offset:offset + len(data)] = data

    def read(self, offset, n):
        return bytes(self.map[offset:offset + n])

    def truncate(self, size):
        os.truncate(self.path, size)

    def close(self):
        try:
            self.map.close()
        except (BufferError, ValueError):
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def models(s):
    """[(name, ModelMetadataResponse)] of every model the daemon serves."""
    pb = _protos()[0]
    idx = s.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=10)
    return [(m.name, s.ModelMetadata(pb.ModelMetadataRequest(name=m.name),
                                     timeout=10)) for m in idx.models]


def random_inputs(meta, n, seed=0, length=None):
    """{name: (datatype, array)} for N items of every input of `meta`.
    A variable dim other than the batch (attention's sequence lengths) gets
    `length`; without one such a model gets None."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in meta.inputs:
        dims = list(t.shape[1:])
        if any(d < 0 for d in dims):
            if length is None:
                return None
            dims = [length if d < 0 else d for d in dims]
        dt = NP[t.datatype]
        if np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, size=[n] + dims,
                             endpoint=True, dtype=dt)
        else:
            a = rng.standard_normal([n] + dims).astype(dt)
        out[t.name] = (t.datatype, a)
    return out


def request(model, inputs, shm_inputs=None, output=None):
    """A ModelInferRequest. shm_inputs {name: (region, offset)} puts those
    inputs in shared memory (their bytes must already be there); output
    (name, region, offset, byte_size) asks for the output in a region."""
    pb = _protos()[0]
    shm_inputs = shm_inputs or {}
    req = pb.ModelInferRequest(model_name=model)
    for name, (datatype, a) in inputs.items():
        t = req.inputs.add(name=name, datatype=datatype, shape=a.shape)
        if name in shm_inputs:
            region, offset = shm_inputs[name]
            t.parameters["shared_memory_region"].string_param = region
            t.parameters["shared_memory_offset"].int64_param = offset
            t.parameters["shared_memory_byte_size"].int64_param = a.nbytes
        else:
            req.raw_input_contents.append(a.tobytes())
    if output is not None:
        name, region, offset, size = output
        o = req.outputs.add(name=name)
        o.parameters["shared_memory_region"].string_param = region
        o.parameters["shared_memory_offset"].int64_param = offset
        o.parameters["shared_memory_byte_size"].int64_param = size
    return req


def register(s, name, key, offset, size):
    pb = _protos()[0]
    s.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
        name=name, key=key, offset=offset, byte_size=size), timeout=10)


def unregister(s, name=""):
    pb = _protos()[0]
    s.SystemSharedMemoryUnregister(
        pb.SystemSharedMemoryUnregisterRequest(name=name), timeout=10)


def status(s, name=""):
    pb = _protos()[0]
    return s.SystemSharedMemoryStatus(
        pb.SystemSharedMemoryStatusRequest(name=name), timeout=10).regions


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")
