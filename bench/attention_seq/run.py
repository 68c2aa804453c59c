#!/usr/bin/python3
"""Sequence attention (issue 15), CPU backend against PyTorch float32, one run.

    /usr/bin/python3 bench/attention_seq/run.py [--build build/default]
        [--n 8] [--lq 1500] [--lk 1500] [--causal] [--seconds 2]

Runs npuk_attention_seq_bench (cpu::AttentionSeq, int8) and PyTorch
float32 bmm -> softmax -> bmm on the same shape, with one thread and with
every thread, and prints ms per call and the ratios. PyTorch's speed depends
on its BLAS: Debian's reference BLAS is ~10x slower than OpenBLAS, so the
script prints which libblas.so.3 is selected.
"""

import argparse
import json
import os
import pathlib
import subprocess
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=str(ROOT / "build" / "default"))
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--lq", type=int, default=1500)
    ap.add_argument("--lk", type=int, default=1500)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    exe = pathlib.Path(a.build) / "bench" / "attention_seq" / "npuk_attention_seq_bench"
    if not exe.exists():
        raise SystemExit(f"{exe} does not exist: build the "
                         "npuk_attention_seq_bench target first")
    cores = os.cpu_count() or 1
    print(f"shape {a.n} x {a.lq} x {a.lk} x 64, causal {a.causal}; "
          f"PyTorch BLAS: {blas()}")
    for threads in sorted({1, cores}):
        args = [str(exe), "--n", str(a.n), "--lq", str(a.lq), "--lk",
                str(a.lk), "--threads", str(threads), "--seconds",
                str(a.seconds)] + (["--causal"] if a.causal else [])
        ours = json.loads(subprocess.run(args, check=True, capture_output=True,
                                         text=True).stdout)
        theirs = torch_ms(a.n, a.lq, a.lk, a.causal, threads, a.seconds)
        print(f"threads {threads}: npuk cpu ({ours['simd']}) "
              f"{ours['ms_per_call']:.1f} ms, {ours['tile_pairs_per_s']:.0f} "
              f"tile pairs/s; PyTorch fp32 {theirs:.1f} ms; npuk/PyTorch speed "
              f"ratio {theirs / ours['ms_per_call']:.2f}x")


if __name__ == "__main__":
    main()
