"""Health you can trust, end to end, on the real npukd binary (loopback and
unix sockets only):

- with --fault=mel:zeros armed at run time, mel goes NOT_SERVING within one
  health interval on every surface (grpc.health.v1, ModelReady, `npukctl
  health`, the npm grpc-health-check client), no client ever receives an
  all-zero mel frame, attention stays SERVING, and mel recovers when the
  fault is cleared (SIGUSR2 drill);
- three daemons behind one channel with round_robin + health checking: when
  one is faulted, traffic moves to the others and no request fails;
- the real daemon under a fake NOTIFY_SOCKET: READY=1 only after the
  canaries, WATCHDOG=1 stops while the device hangs;
- socket activation: npukd serves on an inherited listening socket.

Environment: NPUKD, NPUKCTL (optional), NODE_CHECK (optional, check.js),
PYTHONPATH with the build-tree `npuk` package (its generated stubs).
Run with /usr/bin/python3 -m pytest.
"""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest

from npuk._proto import grpc_service_pb2 as pb
from npuk._proto import grpc_service_pb2_grpc as pb_grpc
from npuk._proto import health_pb2
from npuk._proto import health_pb2_grpc

NPUKD = os.environ.get("NPUKD", "")
NPUKCTL = os.environ.get("NPUKCTL", "")
NODE_CHECK = os.environ.get("NODE_CHECK", "")
INTERVAL_S = 1.0
# A state change must be visible within one interval; the slack covers a
# canary's own run time and process scheduling on a loaded 2-core machine.
SLACK_S = 1.5

pytestmark = pytest.mark.skipif(not NPUKD, reason="NPUKD not set")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Daemon:
    def __init__(self, tmp, name, args, listen=None, env=None, target=None,
                 prefix=(), **popen):
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.listen = listen or f"unix:{self.sock}"
        self.target = target or self.listen
        self.log_path = os.path.join(tmp, f"{name}.log")
        log = open(self.log_path, "w")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [*prefix, NPUKD, f"--listen={self.listen}", "--backend=cpu",
             "--cpu_threads=1",
             f"--health_interval={int(INTERVAL_S * 1000)}ms", *args],
            stdout=log, stderr=subprocess.STDOUT, env=full_env, **popen)
        log.close()
        self.channel = grpc.insecure_channel(self.target)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=60)
        except grpc.FutureTimeoutError:
            self.stop()
            raise AssertionError(f"{name} did not come up:\n{self.log()}")
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)

    def log(self):
        return pathlib.Path(self.log_path).read_text(errors="replace")

    def check(self, service):
        return self.health.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10).status

    def model_ready(self, model):
        return self.stub.ModelReady(pb.ModelReadyRequest(name=model),
                                    timeout=10).ready

    def drill(self):
        """SIGUSR2: toggles the configured faults."""
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.channel.close()


@pytest.fixture
def tmp():
    d = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"npuk-health-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir(parents=True)
    yield str(d)
    shutil.rmtree(d, ignore_errors=True)


def mel_request(frames):
    return pb.ModelInferRequest(
        model_name="mel",
        inputs=[pb.ModelInferRequest.InferInputTensor(
            name="audio", datatype="INT16", shape=[len(frames), 400])],
        raw_input_contents=[frames.astype("<i2").tobytes()])


def attention_request(rng):
    q, k, v = (rng.integers(-60, 60, size=(1, 64, 64), dtype=np.int8)
               for _ in range(3))
    tensors = [pb.ModelInferRequest.InferInputTensor(
        name=n, datatype="INT8", shape=[1, 64, 64]) for n in ("q", "k", "v")]
    return pb.ModelInferRequest(
        model_name="attention", inputs=tensors,
        raw_input_contents=[q.tobytes(), k.tobytes(), v.tobytes()])


def speechlike(rng, n):
    t = np.arange(400) / 16000.0
    f = rng.uniform(100, 3000, size=(n, 1))
    x = 6000 * np.sin(2 * np.pi * f * t) + rng.normal(0, 300, size=(n, 400))
    return np.clip(x, -32768, 32767).astype(np.int16)


def assert_no_zero_frame(resp, frames):
    out = np.frombuffer(resp.raw_output_contents[0], dtype=np.int8)
    assert out.size == frames * 80
    zero = np.flatnonzero(~out.reshape(frames, 80).any(axis=1))
    assert zero.size == 0, f"client received all-zero mel frames {zero}"


class Traffic:
    """Background mel (and attention) requests; records every outcome and
    fails on any all-zero frame."""

    def __init__(self, stub, attention=True):
        self.stub, self.attention = stub, attention
        self.stop_flag = threading.Event()
        self.mel_ok = self.mel_err = self.att_ok = 0
        self.errors = []
        self.zero_frames = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        rng = np.random.default_rng(1)
        while not self.stop_flag.is_set():
            frames = speechlike(rng, 4)
            try:
                resp = self.stub.ModelInfer(mel_request(frames), timeout=10)
                try:
                    assert_no_zero_frame(resp, 4)
                    self.mel_ok += 1
                except AssertionError as e:
                    self.zero_frames.append(str(e))
            except grpc.RpcError as e:
                self.mel_err += 1
                self.errors.append((e.code(), e.details()))
            if self.attention:
                resp = self.stub.ModelInfer(attention_request(rng), timeout=10)
                assert len(resp.raw_output_contents[0]) == 4096
                self.att_ok += 1
            time.sleep(0.01)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=30)


def npukctl_health(target, model):
    if not NPUKCTL:
        return None
    r = subprocess.run([NPUKCTL, "health", f"--target={target}",
                        f"--model={model}"], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout + r.stderr


def node_check(target, service):
    if not NODE_CHECK:
        return None
    r = subprocess.run(["node", NODE_CHECK, target, service],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout.strip()


def surfaces(d, model):
    """The model's state on every surface, as (name, serving) pairs."""
    out = [("grpc.health", d.check(model) == SERVING),
           ("ModelReady", d.model_ready(model))]
    ctl = npukctl_health(d.target, model)
    if ctl is not None:
        out.append(("npukctl", ctl[0] == 0))
    node = node_check(d.target, model)
    if node is not None:
        out.append(("grpc-health-check", node[1] == "SERVING"))
    return out


def wait_all(d, model, serving, limit_s):
    """Waits until grpc.health flips (polled fast, so the returned seconds
    measure the daemon, not the slower CLI surfaces), then until every
    surface agrees, all within `limit_s`."""
    want = SERVING if serving else NOT_SERVING
    t0 = time.monotonic()
    while d.check(model) != want:
        if time.monotonic() - t0 > limit_s:
            raise AssertionError(
                f"grpc.health {model} not {want} after {limit_s:.1f}s\n"
                f"{d.log()[-3000:]}")
        time.sleep(0.02)
    took = time.monotonic() - t0
    while True:
        got = surfaces(d, model)
        if all(s == serving for _, s in got):
            return took
        if time.monotonic() - t0 > limit_s:
            raise AssertionError(
                f"{model} not {'SERVING' if serving else 'NOT_SERVING'} on "
                f"every surface after {limit_s:.1f}s: {got}\n{d.log()[-3000:]}")
        time.sleep(0.05)


def test_zeros_fault_detected_withheld_and_recovered(tmp):
    # Faults are configured but disarmed at once, so the drill starts from a
    # healthy daemon.
    d = Daemon(tmp, "zeros", ["--fault=mel:zeros"])
    try:
        d.drill()  # off
        wait_all(d, "mel", True, 30)
        assert d.check("attention") == SERVING
        assert d.check("") == SERVING

        # Arm without traffic: only the interval canary can notice.
        d.drill()  # on
        took = wait_all(d, "mel", False, INTERVAL_S + SLACK_S)
        print(f"mel NOT_SERVING on every surface {took:.2f}s after the "
              f"fault (interval {INTERVAL_S}s)")
        assert d.check("attention") == SERVING
        assert d.model_ready("attention")
        assert d.check("") == NOT_SERVING

        # Under traffic: no client ever receives an all-zero mel frame.
        traffic = Traffic(d.stub)
        time.sleep(2 * INTERVAL_S)
        d.drill()  # off: recovery
        took = wait_all(d, "mel", True, INTERVAL_S + SLACK_S)
        print(f"mel SERVING again {took:.2f}s after the fault cleared")
        d.drill()  # on again while requests flow
        wait_all(d, "mel", False, INTERVAL_S + SLACK_S)
        time.sleep(INTERVAL_S)
        traffic.stop()
        assert not traffic.zero_frames, traffic.zero_frames[:3]
        assert traffic.mel_ok > 0 and traffic.att_ok > 0
        codes = {c for c, _ in traffic.errors}
        assert codes <= {grpc.StatusCode.INTERNAL,
                         grpc.StatusCode.UNAVAILABLE}, traffic.errors[:3]
        internal = [m for c, m in traffic.errors
                    if c == grpc.StatusCode.INTERNAL]
        for m in internal:
            assert "all-zero" in m and "NOT_SERVING" in m, m
        assert d.check("attention") == SERVING
    finally:
        d.stop()


@pytest.mark.skipif(not (NPUKCTL and NODE_CHECK),
                    reason="needs NPUKCTL and NODE_CHECK")
def test_standard_health_client_agrees_with_npukctl(tmp):
    d = Daemon(tmp, "agree", ["--fault=mel:zeros"])
    try:
        wait_all(d, "attention", True, 30)
        for service in ("", "mel", "attention", "whisper"):
            ctl_rc, ctl_out = npukctl_health(d.target, service or "")
            node_rc, node_out = node_check(d.target, service)
            if service == "":
                # npukctl without --model checks the server and each model.
                ctl_rc, ctl_out = subprocess.run(
                    [NPUKCTL, "health", f"--target={d.target}"],
                    capture_output=True, text=True, timeout=60).returncode, ""
            assert ctl_rc == node_rc, (service, ctl_out, node_out)
            if service == "whisper":
                assert "SERVICE_UNKNOWN" in ctl_out
                assert node_out.startswith("ERROR NOT_FOUND"), node_out
            elif service:
                assert node_out in ctl_out, (service, ctl_out, node_out)
            print(f"service {service!r}: npukctl exit {ctl_rc}, "
                  f"grpc-health-check {node_out!r}")
        assert node_check(d.target, "mel") == (1, "NOT_SERVING")
        assert node_check(d.target, "attention") == (0, "SERVING")
    finally:
        d.stop()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The client config from deploy/README.md, plus a retry policy so the one
# request a faulting daemon withholds (before it reports NOT_SERVING) is
# retried on another backend instead of failing.
SERVICE_CONFIG = {
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": "mel"},
    "methodConfig": [{
        "name": [{"service": "inference.GRPCInferenceService"}],
        "retryPolicy": {
            "maxAttempts": 3, "initialBackoff": "0.01s",
            "maxBackoff": "0.1s", "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE", "INTERNAL"]}}],
}


def readme_service_config():
    readme = pathlib.Path(__file__).resolve().parents[2] / "deploy/README.md"
    for line in readme.read_text().splitlines():
        if line.startswith('{"loadBalancingConfig"'):
            return json.loads(line)
    raise AssertionError("deploy/README.md lost its service config")


def user_count(d, model="mel"):
    r = d.stub.ModelStatistics(pb.ModelStatisticsRequest(name=model),
                               timeout=10)
    return r.model_stats[0].inference_count


def test_round_robin_moves_traffic_off_a_faulted_daemon(tmp):
    documented = readme_service_config()
    assert documented["loadBalancingConfig"] == \
        SERVICE_CONFIG["loadBalancingConfig"]
    assert documented["healthCheckConfig"] == \
        SERVICE_CONFIG["healthCheckConfig"]
    ports = [free_port() for _ in range(3)]
    daemons = []
    try:
        for i, p in enumerate(ports):
            daemons.append(Daemon(tmp, f"rr{i}", ["--fault=mel:zeros"],
                                  listen=f"127.0.0.1:{p}"))
        for d in daemons:
            d.drill()  # disarm: all healthy
        for d in daemons:
            wait_all(d, "mel", True, 30)
        target = "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)
        channel = grpc.insecure_channel(target, options=[
            ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
            ("grpc.enable_retries", 1)])
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        rng = np.random.default_rng(2)
        failures, sent = [], 0

        def burst(n):
            nonlocal sent
            for _ in range(n):
                frames = speechlike(rng, 2)
                try:
                    assert_no_zero_frame(
                        stub.ModelInfer(mel_request(frames), timeout=10), 2)
                except grpc.RpcError as e:
                    failures.append((e.code(), e.details()))
                sent += 1

        burst(60)
        before = [user_count(d) for d in daemons]
        assert all(b > 0 for b in before), f"round_robin did not spread: {before}"

        daemons[1].drill()  # arm the fault on one daemon, traffic flowing
        deadline = time.monotonic() + INTERVAL_S + SLACK_S
        while daemons[1].check("mel") == SERVING and time.monotonic() < deadline:
            burst(5)
        assert daemons[1].check("mel") == NOT_SERVING
        # Let the Watch update reach the channel, then count.
        burst(10)
        mid = [user_count(d) for d in daemons]
        burst(90)
        after = [user_count(d) for d in daemons]
        print(f"mel requests per daemon: before fault {before}, at "
              f"NOT_SERVING {mid}, end {after}; {sent} sent, "
              f"{len(failures)} failed")
        assert not failures, failures[:3]
        assert after[1] == mid[1], "the faulted daemon still got traffic"
        assert after[0] > mid[0] and after[2] > mid[2]

        daemons[1].drill()  # clear: it comes back
        wait_all(daemons[1], "mel", True, INTERVAL_S + SLACK_S)
        time.sleep(0.5)
        back = user_count(daemons[1])
        burst(60)
        assert user_count(daemons[1]) > back, "recovered daemon got no traffic"
        assert not failures, failures[:3]
        channel.close()
    finally:
        for d in daemons:
            d.stop()


class FakeSystemd:
    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def receive(self, seconds, until=None):
        end = time.monotonic() + seconds
        got = []
        while time.monotonic() < end:
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            got.append(m)
            if until and until in m:
                break
        self.messages += got
        return got


def test_systemd_ready_after_canaries_and_watchdog_stops_on_hang(tmp):
    systemd = FakeSystemd(tmp)
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "400000"}
    # LISTEN/WATCHDOG_PID must name the daemon itself; leave it unset.
    d = Daemon(tmp, "notify", ["--fault=attention:hang"], env=env)
    try:
        # The hang is armed from the start: attention's canary never
        # finishes, so READY=1 must not come.
        early = systemd.receive(3 * INTERVAL_S)
        assert early, "npukd sent nothing to NOTIFY_SOCKET"
        assert not any("READY=1" in m for m in early), early
        assert not any("WATCHDOG=1" in m for m in early), early
        d.drill()  # clear the hang
        got = systemd.receive(10 * INTERVAL_S, until="READY=1")
        ready = [m for m in got if "READY=1" in m]
        assert ready, got
        assert "mel SERVING" in ready[0] and "attention SERVING" in ready[0]
        pings = systemd.receive(1.5)
        assert any("WATCHDOG=1" in m for m in pings), pings
        d.drill()  # hang again
        deadline = time.monotonic() + 10 * INTERVAL_S
        while time.monotonic() < deadline:
            got = systemd.receive(0.5)
            if any("device not answering" in m for m in got):
                break
        quiet = systemd.receive(1.5)
        assert not any("WATCHDOG=1" in m for m in quiet), quiet
        d.drill()  # clear before stopping so the drain can finish
        d.proc.send_signal(signal.SIGTERM)
        tail = systemd.receive(10, until="STOPPING=1")
        assert any("STOPPING=1" in m for m in tail), tail
    finally:
        d.stop()


def test_socket_activation(tmp):
    path = os.path.join(tmp, "systemd.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    fd = lsock.fileno()

    def as_systemd():
        os.dup2(fd, 3)

    # What systemd does: the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID of
    # the daemon itself (the shell's pid, which exec keeps). --listen names
    # another path: clients reach the daemon only through the inherited one.
    d = Daemon(tmp, "activated", [], target=f"unix:{path}",
               prefix=["/bin/sh", "-c",
                       'LISTEN_FDS=1 LISTEN_PID=$$ exec "$0" "$@"'],
               preexec_fn=as_systemd, pass_fds=tuple({fd, 3}))
    try:
        lsock.close()
        wait_all(d, "mel", True, 30)
        frames = speechlike(np.random.default_rng(3), 3)
        assert_no_zero_frame(d.stub.ModelInfer(mel_request(frames),
                                               timeout=10), 3)
        assert "socket-activated" in d.log()
    finally:
        d.stop()
