"""The unmodified tritonclient Python package, built from its source under
$NPUK_UPSTREAM_DIR, and a real npukd for it to talk to.

build_tritonclient() copies triton-inference-server/client's
src/python/library/tritonclient into a temporary directory and generates its
gRPC modules (service_pb2, service_pb2_grpc, model_config_pb2) from
triton-inference-server/common's protobuf with grpc_tools, as the upstream
wheel build does; nothing of tritonclient's own code is changed. It runs on
Debian's python3-grpcio, python3-rapidjson and python3-geventhttpclient.

Npukd starts the daemon on 127.0.0.1 with gRPC and REST (--http) on free
ports and stops it with SIGTERM.

Used by test_tritonclient.py and test_tritonclient_shm.py."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

SKIP_CODE = 77
_CLIENT = ("triton-inference-server+client", "src", "python", "library")
_COMMON = ("triton-inference-server+common", "protobuf")


def upstream_dirs() -> Tuple[Optional[str], Optional[str], str]:
    """(tritonclient library dir, protobuf dir, why not) from
    $NPUK_UPSTREAM_DIR."""
    root = os.environ.get("NPUK_UPSTREAM_DIR", "")
    if not root:
        return None, None, ("NPUK_UPSTREAM_DIR is not set: configure with "
                            "-DNPUK_UPSTREAM_DIR=DIR after "
                            "scripts/upstream-sources.sh DIR")
    lib = os.path.join(root, *_CLIENT)
    proto = os.path.join(root, *_COMMON)
    if not os.path.isfile(os.path.join(lib, "tritonclient", "http",
                                       "_client.py")):
        return None, None, "%s has no triton-inference-server/client (%s)" % (
            root, lib)
    if not os.path.isfile(os.path.join(proto, "grpc_service.proto")):
        return None, None, ("%s has no triton-inference-server/common "
                            "protobuf (%s)" % (root, proto))
    return lib, proto, ""


def missing_modules() -> List[str]:
    missing = []
    for m in ("grpc", "grpc_tools", "rapidjson", "geventhttpclient", "numpy"):
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    return missing


def skip_reason() -> str:
    """Why tritonclient cannot run here ("" when it can)."""
    _, _, why = upstream_dirs()
    if why:
        return why
    missing = missing_modules()
    if missing:
        return ("missing Python modules %s: apt-get install python3-grpcio "
                "python3-grpc-tools python3-rapidjson python3-geventhttpclient"
                % ", ".join(missing))
    return ""


_built: Optional[str] = None


def build_tritonclient() -> str:
    """Builds tritonclient into a temporary directory (once per process),
    puts it first on sys.path and returns that directory."""
    global _built
    if _built is not None:
        return _built
    lib, proto, why = upstream_dirs()
    if why:
        raise RuntimeError(why)
    out = tempfile.mkdtemp(prefix="npuk-tritonclient-")
    shutil.copytree(os.path.join(lib, "tritonclient"),
                    os.path.join(out, "tritonclient"))
    gen = os.path.join(out, "gen")
    os.makedirs(gen)
    from grpc_tools import protoc  # Debian python3-grpc-tools
    import grpc_tools
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", "-I" + proto]
    if os.path.isdir(include):
        args.append("-I" + include)
    args += ["--python_out=" + gen, "--grpc_python_out=" + gen,
             "grpc_service.proto", "model_config.proto"]
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed on %s" % proto)
    dest = os.path.join(out, "tritonclient", "grpc")
    # The wheel's names: grpc_service_* become service_*, and protoc's
    # top-level imports become package imports.
    for src, dst in (("model_config_pb2.py", "model_config_pb2.py"),
                     ("grpc_service_pb2.py", "service_pb2.py"),
                     ("grpc_service_pb2_grpc.py", "service_pb2_grpc.py")):
        with open(os.path.join(gen, src)) as f:
            text = f.read()
        text = re.sub(r"^import grpc_service_pb2 as (\w+)$",
                      r"from tritonclient.grpc import service_pb2 as \1",
                      text, flags=re.M)
        text = re.sub(r"^import (\w+)_pb2 as (\w+)$",
                      r"from tritonclient.grpc import \1_pb2 as \2",
                      text, flags=re.M)
        with open(os.path.join(dest, dst), "w") as f:
            f.write(text)
    sys.path.insert(0, out)
    _built = out
    return out


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Npukd:
    """`with Npukd(["--backend=cpu"]) as d:` runs $NPUKD_BINARY with gRPC on
    d.grpc_url and REST on d.http_url (both 127.0.0.1, free ports)."""

    def __init__(self, args: Optional[List[str]] = None,
                 binary: Optional[str] = None, timeout: float = 60.0) -> None:
        self.binary = binary or os.environ["NPUKD_BINARY"]
        self.args = list(args or [])
        self.timeout = timeout
        self.grpc_url = ""
        self.http_url = ""
        self.log_path = ""
        self._dir: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> "Npukd":
        self._dir = tempfile.mkdtemp(prefix="npukd-tritonclient-")
        self.log_path = os.path.join(self._dir, "npukd.log")
        with open(self.log_path, "w") as log:
            self._proc = subprocess.Popen(
                [self.binary, "--listen=127.0.0.1:0", "--http=127.0.0.1:0"]
                + self.args, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.timeout
        while not (self.grpc_url and self.http_url):
            if self._proc.poll() is not None:
                raise RuntimeError("npukd exited with %s:\n%s"
                                   % (self._proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("npukd did not start in %.0f s:\n%s"
                                   % (self.timeout, self.log()))
            text = self.log()
            m = re.search(r"serving on (127\.0\.0\.1:\d+)", text)
            h = re.search(r"REST \(KServe v2\) on .* \(port (\d+)\)", text)
            if m and h:
                self.grpc_url = m.group(1)
                self.http_url = "127.0.0.1:" + h.group(1)
            time.sleep(0.05)
        return self

    def stop(self) -> int:
        if self._proc is None:
            return 0
        self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._proc = None
        return code

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
