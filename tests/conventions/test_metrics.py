"""/metrics of a live npukd passes `promtool check metrics` (Prometheus'
own linter: counters end in _total, base units, HELP and TYPE) after real
traffic, and has the process and build-info families. Exits 77 (ctest
SKIPPED) with the reason when promtool is not installed."""
import os
import re
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest

import daemon
from npuk._proto import grpc_service_pb2 as pb
from npuk._proto import grpc_service_pb2_grpc as pb_grpc

VERSION = os.environ.get("NPUK_VERSION", "")
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def body() -> str:
    if PROMTOOL is None:
        pytest.exit("SKIPPED: promtool not found (apt-get install "
                    "prometheus)", returncode=77)
    with daemon.running(metrics=True) as d:
        stub = pb_grpc.GRPCInferenceServiceStub(d.channel)
        req = pb.ModelInferRequest(model_name="passthrough")
        t = req.inputs.add(name="in", datatype="INT8", shape=[2, 4096])
        del t
        req.raw_input_contents.append(np.arange(8192, dtype=np.int8).tobytes())
        stub.ModelInfer(req, timeout=30)
        with pytest.raises(Exception):
            stub.ModelInfer(pb.ModelInferRequest(model_name="nosuch"),
                            timeout=30)
        url = f"http://127.0.0.1:{d.metrics_port}/metrics"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.read().decode()
            except OSError:
                assert time.monotonic() < deadline, d.log()
                time.sleep(0.1)


def test_promtool_check_metrics_passes(body: str) -> None:
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                       capture_output=True, text=True, timeout=60)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == ""


def test_process_and_build_info(body: str) -> None:
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_virtual_memory_bytes", "process_open_fds",
                   "process_max_fds", "process_start_time_seconds"):
        m = re.search(rf"^{family} ([0-9.e+]+)$", body, re.M)
        assert m, family
        assert float(m.group(1)) >= 0
    assert float(re.search(r"^process_resident_memory_bytes (\S+)$", body,
                           re.M).group(1)) > 1 << 20
    start = float(re.search(r"^process_start_time_seconds (\S+)$", body,
                            re.M).group(1))
    assert time.time() - 600 < start <= time.time() + 1
    assert f'npukd_build_info{{version="{VERSION}"}} 1\n' in body


def test_counters_count_the_traffic(body: str) -> None:
    lbl = '{model="passthrough",version="1"}'
    assert f"npuk_inference_request_success_total{lbl} 1\n" in body
    assert f"npuk_inference_count_total{lbl} 2\n" in body
    assert f"npuk_inference_exec_count_total{lbl} 1\n" in body
    m = re.search(rf"^npuk_inference_request_duration_seconds_total"
                  rf"{re.escape(lbl)} (\S+)$", body, re.M)
    assert m and 0 < float(m.group(1)) < 60
    # Every counter family ends in _total; no _us units.
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        if kind == "counter":
            assert name.endswith("_total"), name
        assert "_us" not in name, name
