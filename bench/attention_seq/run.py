#!/usr/bin/python3
"""Sequence attention (issue 15), CPU backend against PyTorch float32, one run.

    /usr/bin/python3 bench/attention_seq/run.py [--build build/default]
        [--n 8] [--lq 1500] [--lk 1500] [--causal] [--seconds 2] [--stream]

Runs npuk_attention_seq_bench (cpu::AttentionSeq, int8; with --stream the
daemon CPU backend's own path in-process: the attention model's units
packed and run by the attention_stream kernel's CPU function) and PyTorch
float32 bmm -> softmax -> bmm on the same shape, with one thread and with
every thread, and prints ms per call and the ratios. PyTorch's speed depends
on its BLAS: Debian's reference BLAS is ~10x slower than OpenBLAS, so the
script prints which libblas.so.3 is selected.

    /usr/bin/python3 bench/attention_seq/run.py --daemon [--backend cpu]
        [--inflight 1] ...

measures the daemon path instead: it starts BUILD/server/npukd on a
temporary unix socket (--cpu_threads=1 and then every core on the cpu
backend), sends the shape as one int8 `attention` request at a time with
npuk.Client.attention_int8 (gRPC and the stream kernel's units and
batching included; --inflight N: N client threads doing so at once, so
one request's transfer overlaps another's compute), and prints ms per
call against PyTorch with as many threads, in the same run.
"""

import argparse
import json
import os
import pathlib
import subprocess
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def blas():
    try:
        return os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
    except OSError:
        return "unknown"


def torch_ms(n, lq, lk, causal, threads, seconds):
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(15)
    q = torch.randn(n, lq, 64, generator=g)
    k = torch.randn(n, lk, 64, generator=g)
    v = torch.randn(n, lk, 64, generator=g)
    mask = None
    if causal:
        i = torch.arange(lq)[:, None]
        j = torch.arange(lk)[None, :]
        mask = torch.where(j <= i + lk - lq, 0.0, float("-inf"))

    def call():
        s = torch.bmm(q, k.transpose(1, 2)) * 0.125
        if mask is not None:
            s = s + mask
        return torch.bmm(torch.softmax(s, dim=-1), v)

    with torch.inference_mode():
        call()
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            call()
            calls += 1
        return 1e3 * (time.perf_counter() - start) / calls


def _die_with_parent():
    import ctypes
    import signal
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def daemon_ms(build, backend, threads, n, lq, lk, causal, seconds,
              inflight=1):
    """ms per call of one [n, lq, 64] x [n, lk, 64] int8 attention request
    through a fresh npukd (cpu backend: `threads` worker threads), with
    `inflight` client threads each sending one request after another (ms
    per call: wall time over all their calls), and the daemon's statistics
    for the model."""
    import sys
    import tempfile
    sys.path.insert(0, str(pathlib.Path(build) / "client" / "python"))
    import numpy as np
    import npuk
    exe = pathlib.Path(build) / "server" / "npukd"
    if not exe.exists():
        raise SystemExit(f"{exe} does not exist: build the npukd and "
                         "npuk_python targets first")
    rng = np.random.default_rng(15)
    q = rng.integers(-127, 128, (n, lq, 64), dtype=np.int8)
    k = rng.integers(-127, 128, (n, lk, 64), dtype=np.int8)
    v = rng.integers(-127, 128, (n, lk, 64), dtype=np.int8)
    with tempfile.TemporaryDirectory(prefix="npuk-bench-") as d:
        sock = "unix:" + os.path.join(d, "npukd.sock")
        args = [str(exe), "--listen=" + sock, "--backend=" + backend]
        if backend == "cpu":
            args.append(f"--cpu_threads={threads}")
        log = open(os.path.join(d, "npukd.log"), "w+")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)
        try:
            c = npuk.Client(sock, timeout=600.0)
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise SystemExit("npukd exited:\n" + open(log.name).read())
                try:
                    if c.health() == "SERVING":
                        break
                except npuk.NpukError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("npukd not SERVING after 60 s:\n" +
                                     open(log.name).read())
                time.sleep(0.05)

            def call():
                return c.attention_int8(q, k, v, 0.01, output_scale=0.5,
                                        causal=causal)

            call()
            counts = [0] * inflight
            start = time.perf_counter()

            def worker(i):
                while time.perf_counter() - start < seconds:
                    call()
                    counts[i] += 1

            workers = [threading.Thread(target=worker, args=(i,))
                       for i in range(inflight)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            ms = 1e3 * (time.perf_counter() - start) / sum(counts)
            got = c.stats("attention").get("attention", {})
            stats = {key: got[key] for key in
                     ("inference_count", "execution_count", "mean_batch")
                     if key in got}
            c.close()
            return ms, stats
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build" / "default"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--lq", type=int, default=1500)
    ap.add_argument("--lk", type=int, default=1500)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--stream", action="store_true",
                    help="in-process, the daemon CPU backend's path (the "
                    "attention_stream kernel's units) instead of the library")
    ap.add_argument("--daemon", action="store_true",
                    help="measure through npukd (BUILD/server/npukd)")
    ap.add_argument("--backend", default="cpu",
                    help="npukd backend for --daemon (cpu or npu-sim)")
    ap.add_argument("--inflight", type=int, default=1,
                    help="--daemon: client threads, each with one request "
                    "in flight (default 1: one request at a time)")
    a = ap.parse_args()
    if a.inflight < 1:
        ap.error("--inflight must be at least 1")
    cores = os.cpu_count() or 1
    if a.daemon:
        print(f"daemon path, backend {a.backend}: shape {a.n} x {a.lq} x "
              f"{a.lk} x 64, causal {a.causal}, {a.inflight} request(s) in "
              f"flight; PyTorch BLAS: {blas()}")
        for threads in sorted({1, cores}):
            ms, stats = daemon_ms(a.build, a.backend, threads, a.n, a.lq,
                                  a.lk, a.causal, a.seconds, a.inflight)
            theirs = torch_ms(a.n, a.lq, a.lk, a.causal, threads, a.seconds)
            print(f"threads {threads}: npukd {ms:.1f} ms per request; "
                  f"PyTorch fp32 {theirs:.1f} ms; npukd/PyTorch speed ratio "
                  f"{theirs / ms:.2f}x; daemon stats: {stats}")
        return
    exe = pathlib.Path(a.build) / "bench" / "attention_seq" / "npuk_attention_seq_bench"
    if not exe.exists():
        raise SystemExit(f"{exe} does not exist: build the "
                         "npuk_attention_seq_bench target first")
    print(f"shape {a.n} x {a.lq} x {a.lk} x 64, causal {a.causal}; "
          f"PyTorch BLAS: {blas()}")
    for threads in sorted({1, cores}):
        args = [str(exe), "--n", str(a.n), "--lq", str(a.lq), "--lk",
                str(a.lk), "--threads", str(threads), "--seconds",
                str(a.seconds)] + (["--causal"] if a.causal else []) + \
            (["--stream"] if a.stream else [])
        ours = json.loads(subprocess.run(args, check=True, capture_output=True,
                                         text=True).stdout)
        theirs = torch_ms(a.n, a.lq, a.lk, a.causal, threads, a.seconds)
        print(f"threads {threads}: npuk cpu {ours['path']} ({ours['simd']}) "
              f"{ours['ms_per_call']:.1f} ms, {ours['tile_pairs_per_s']:.0f} "
              f"tile pairs/s; PyTorch fp32 {theirs:.1f} ms; npuk/PyTorch speed "
              f"ratio {theirs / ours['ms_per_call']:.2f}x")


if __name__ == "__main__":
    main()
