#!/usr/bin/python3
"""Whisper features from npukd: the `log_mel` model (raw PCM in, features out)
against the framed `mel` path (the client frames the audio into 400-sample
windows at hop 160, sends int16 frames, normalises the int8 answer).

  1. wire bytes per second of audio, request and response, for each path
     (serialised ModelInferRequest/Response sizes: what gRPC carries before
     its own few bytes of framing);
  2. end-to-end throughput: N one-second requests at concurrency C through
     npuk.Client (Python, one shared channel), feature frames per second,
     on the cpu and npu-sim backends, each daemon started here.

npu-sim figures are SIMULATED: its Phoenix latency model (per-run overhead,
DMA bandwidth, kernel cycles from the vector-op counts; kernels/README.md),
not hardware. Ratios are against the framed `mel` path in the same run.

  /usr/bin/python3 bench/whisper/whisper_bench.py --npukd BUILD/server/npukd
  (or: cmake --build BUILD --target bench_whisper)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import sys
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "whisper"))

import npuk  # noqa: E402
from npuk import _common, features  # noqa: E402
from npuk import log_mel as lm  # noqa: E402
from npukd_process import Npukd  # noqa: E402

SR = 16000


def test_audio(seconds: float, seed: int) -> np.ndarray:
    """Speech-like level and spectrum without espeak: tones, a sweep and
    noise at about -12 dBFS."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = (0.15 * np.sin(2 * np.pi * (180 + 20 * seed) * t) +
         0.08 * np.sin(2 * np.pi * (300 + 1800 * t) * t) +
         0.03 * rng.standard_normal(t.size))
    return x.astype(np.float32)


def framed_mel(c: npuk.Client, audio: np.ndarray) -> np.ndarray:
    """The pre-log_mel way: host framing, `mel`, host normalisation."""
    return features.normalize_log_mel(c.mel(features.frame_audio(audio)))


def wire_sizes(c: npuk.Client, audio: np.ndarray) -> List[Tuple[str, int, int]]:
    """(path, request bytes, response bytes) for one clip."""
    rows = []
    for name, x in (("log_mel FP32", audio),
                    ("log_mel INT16", npuk.audio_to_int16(audio))):
        req, _, _ = lm.build_request(x, 80, 0)
        resp = c.infer(req)
        rows.append((name, req.ByteSize(), resp.ByteSize()))
    req = _common.mel_request(features.frame_audio(audio))
    resp = c.infer(req)
    rows.append(("mel (framed)", req.ByteSize(), resp.ByteSize()))
    return rows


def run_load(call: Callable[[int], np.ndarray], requests: int,
             concurrency: int) -> Dict[str, float]:
    for i in range(concurrency):  # warm-up: channel, threads, daemon
        call(i)
    latencies: List[float] = []
    frames = 0

    def one(i: int) -> Tuple[float, int]:
        t0 = time.perf_counter()
        out = call(i)
        return time.perf_counter() - t0, int(out.shape[1])

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(concurrency) as pool:
        for lat, n in pool.map(one, range(requests)):
            latencies.append(lat)
            frames += n
    elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1e3
    return {"elapsed_s": elapsed, "frames": frames,
            "frames_per_s": frames / elapsed,
            "audio_s_per_s": requests / elapsed,
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--npukd", required=True, help="the npukd binary")
    ap.add_argument("--backends", default="cpu,npu-sim")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="audio per request")
    args = ap.parse_args()

    clips = [test_audio(args.seconds, i) for i in range(8)]
    paths: Dict[str, Callable[[npuk.Client, int], np.ndarray]] = {
        "log_mel FP32": lambda c, i: c.log_mel_spectrogram(
            clips[i % 8], as_numpy=True, timeout=60),
        "log_mel INT16": lambda c, i: c.log_mel_spectrogram(
            npuk.audio_to_int16(clips[i % 8]), as_numpy=True, timeout=60),
        "mel (framed)": lambda c, i: framed_mel(c, clips[i % 8]),
    }
    print("npukd %s; %d requests of %.1f s audio at concurrency %d; "
          "load average %.1f" % (args.npukd, args.requests, args.seconds,
                                 args.concurrency, os.getloadavg()[0]))
    wire_done = False
    results: Dict[Tuple[str, str], Dict[str, float]] = {}
    batches: Dict[str, Dict[str, float]] = {}
    for backend in args.backends.split(","):
        with Npukd(args.npukd, ["--backend=" + backend]) as d, \
                npuk.Client(d.target, timeout=60) as c:
            if not wire_done:
                print("\nwire bytes per second of audio (80 bands, %.1f s "
                      "clip):" % args.seconds)
                print("  %-14s %12s %12s %12s" % ("path", "request B/s",
                                                   "response B/s", "total"))
                rows = wire_sizes(c, clips[0])
                for name, rq, rs in rows:
                    print("  %-14s %12.0f %12.0f %12.0f"
                          % (name, rq / args.seconds, rs / args.seconds,
                             (rq + rs) / args.seconds))
                mel_rq = rows[-1][1]
                for name, rq, rs in rows[:2]:
                    print("  %s request / framed mel request: %.2f"
                          % (name, rq / mel_rq))
                wire_done = True
            for name, call in paths.items():
                results[(backend, name)] = run_load(
                    lambda i, call=call: call(c, i), args.requests,
                    args.concurrency)
            st = c.stats()
            batches[backend] = {m: st[m]["mean_batch"] for m in
                                ("log_mel", "mel") if m in st}
    print("\nend to end (Python client, one channel): %d x %.1f s requests, "
          "concurrency %d" % (args.requests, args.seconds, args.concurrency))
    print("  %-8s %-14s %10s %12s %8s %8s %8s" % (
        "backend", "path", "frames/s", "audio s/s", "p50 ms", "p99 ms",
        "vs mel"))
    for (backend, name), r in results.items():
        base = results[(backend, "mel (framed)")]["frames_per_s"]
        print("  %-8s %-14s %10.0f %12.1f %8.1f %8.1f %7.2fx" % (
            backend, name, r["frames_per_s"], r["audio_s_per_s"], r["p50_ms"],
            r["p99_ms"], r["frames_per_s"] / base))
    for backend, b in batches.items():
        print("  %s: mean frames per device run %s" % (backend, ", ".join(
            "%s %.0f" % kv for kv in b.items())))
    print("\nnpu-sim rows are SIMULATED (npu-sim's Phoenix latency model), "
          "not hardware.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
