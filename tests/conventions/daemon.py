"""A real npukd on a temporary unix socket (and, when asked, /metrics on a
free 127.0.0.1 port) for the convention tests. Uses only grpc and the
stubs of the build-tree npuk package (PYTHONPATH)."""
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time

import grpc

from npuk._proto import health_pb2, health_pb2_grpc

NPUKD = os.environ.get("NPUKD", "")


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, directory: str, metrics: bool) -> None:
        self.socket_path = os.path.join(directory, "npukd.sock")
        self.target = "unix:" + self.socket_path
        self.metrics_port = free_port() if metrics else 0
        self.log_path = os.path.join(directory, "npukd.log")
        args = [NPUKD, "--listen=" + self.target, "--backend=cpu"]
        if metrics:
            args.append(f"--metrics=127.0.0.1:{self.metrics_port}")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)
        self.channel = grpc.insecure_channel(self.target)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_serving(self, timeout_s: float = 60.0) -> None:
        stub = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, "npukd exited:\n" + self.log()
            try:
                r = stub.Check(health_pb2.HealthCheckRequest(service=""),
                               timeout=1.0)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "never SERVING:\n" + self.log()
            time.sleep(0.05)

    def stop(self) -> None:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def running(metrics: bool = False):
    assert NPUKD, "set NPUKD to the npukd binary (ctest does)"
    with tempfile.TemporaryDirectory(prefix="npuk-conv-") as d:
        daemon = Daemon(d, metrics)
        try:
            daemon.wait_serving()
            yield daemon
        finally:
            daemon.stop()
