"""Starts the real npukd on a temporary unix socket and stops it (used by the
Whisper parity tests and bench/whisper)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tempfile
import time
from typing import List, Optional

import grpc

from npuk._proto import health_pb2, health_pb2_grpc


def _die_with_parent() -> None:
    """The daemon must not outlive a crashed parent (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


class Npukd:
    """`with Npukd(binary, ["--backend=cpu"]) as d: d.target` is a running
    daemon, SERVING as a whole, on unix:<tmp>/npukd.sock."""

    def __init__(self, binary: str, args: List[str],
                 ready_timeout: float = 60.0) -> None:
        self.binary = binary
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        self._proc: Optional[subprocess.Popen] = None
        self.target = ""
        self.log_path = ""

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "Npukd":
        self._dir = tempfile.TemporaryDirectory(prefix="npukd-whisper-")
        sock = os.path.join(self._dir.name, "npukd.sock")
        self.target = "unix:" + sock
        self.log_path = os.path.join(self._dir.name, "npukd.log")
        with open(self.log_path, "w") as log:
            self._proc = subprocess.Popen(
                [self.binary, "--listen=" + self.target] + self.args,
                stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
        channel = grpc.insecure_channel(self.target)
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + self.ready_timeout
        try:
            while True:
                if self._proc.poll() is not None:
                    raise RuntimeError("npukd %s exited with %s:\n%s"
                                       % (self.args, self._proc.returncode,
                                          self.log()))
                if os.path.exists(sock):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("npukd %s made no socket in %.0f s:\n%s"
                                       % (self.args, self.ready_timeout,
                                          self.log()))
                time.sleep(0.05)
            while True:
                if self._proc.poll() is not None:
                    raise RuntimeError("npukd %s exited with %s:\n%s"
                                       % (self.args, self._proc.returncode,
                                          self.log()))
                try:
                    r = stub.Check(health_pb2.HealthCheckRequest(service=""),
                                   timeout=1.0)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("npukd %s not SERVING after %.0f s:\n%s"
                                       % (self.args, self.ready_timeout,
                                          self.log()))
                time.sleep(0.05)
        except BaseException:
            self.__exit__()
            raise
        finally:
            channel.close()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
