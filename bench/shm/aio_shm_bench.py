"""Shared-memory bench for the asyncio client (issue 12): 100-frame mel
requests to one npukd (CPU backend, unix socket in a temp dir) through
npuk.AsyncClient with plain gRPC and with system shared memory, interleaved
in blocks of 50 so both see the same machine; sequential (c=1) and 8
coroutines at once (c=8, the client's region count). Prints the median and
p90 round trip, requests/s and the ratios, one run.

    PYTHONPATH=build/<dir>/client/python /usr/bin/python3 \\
        bench/shm/aio_shm_bench.py --npukd build/<dir>/server/npukd
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import npuk


def _summary(us, wall_s):
    us = sorted(us)
    return us[len(us) // 2], us[len(us) * 9 // 10], len(us) / wall_s


async def _run(plain, shm, frames, n, concurrency):
    want = (await plain.mel(frames)).tobytes()
    times = {"plain": [], "shm": []}
    wall = {"plain": 0.0, "shm": 0.0}

    async def one(c, which):
        start = time.perf_counter()
        out = await c.mel(frames)
        times[which].append((time.perf_counter() - start) * 1e6)
        if out.tobytes() != want:
            raise SystemExit("%s mel: bytes differ from plain gRPC" % which)

    done = 0
    while done < n:
        block = min(50, n - done)
        for which, c in (("plain", plain), ("shm", shm)):
            start = time.perf_counter()
            for i in range(0, block, concurrency):
                await asyncio.gather(*(one(c, which) for _ in
                                       range(min(concurrency, block - i))))
            wall[which] += time.perf_counter() - start
        done += block
    return (_summary(times["plain"], wall["plain"]),
            _summary(times["shm"], wall["shm"]))


async def _main(target, n):
    rng = np.random.default_rng(7)
    frames = rng.integers(-32768, 32767, size=(100, 400), dtype=np.int16)
    async with npuk.AsyncClient(target, shared_memory=False) as plain, \
            npuk.AsyncClient(target, shared_memory=True) as shm:
        print("npukd --backend=cpu on a unix socket; npuk.AsyncClient mel(); "
              "round trip includes the CPU backend's compute")
        for c in (1, 8):
            (pm, pp, pr), (sm, sp, sr) = await _run(plain, shm, frames, n, c)
            print("mel 100 frames (80 KB in, 8 KB out), %d requests each, "
                  "c=%d:" % (n, c))
            print("  plain gRPC     median %8.1f us  p90 %8.1f us  %8.1f "
                  "req/s" % (pm, pp, pr))
            print("  shared memory  median %8.1f us  p90 %8.1f us  %8.1f "
                  "req/s" % (sm, sp, sr))
            print("  ratio (plain/shm): median latency %.2fx, throughput "
                  "%.2fx" % (pm / sm, sr / pr))
        t = shm._shm
        print("shared-memory client: %d requests by region, %d plain "
              "fallbacks" % (t.requests, t.fallbacks))
        return 0 if t.fallbacks == 0 and t.requests > 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npukd", required=True, help="npukd binary")
    ap.add_argument("--requests", type=int, default=2000,
                    help="requests per transport and concurrency")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="npuk-aio-shm-bench-") as d:
        target = "unix:" + os.path.join(d, "npukd.sock")
        log = open(os.path.join(d, "npukd.log"), "w+")
        proc = subprocess.Popen([args.npukd, "--listen=" + target,
                                 "--backend=cpu"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            with npuk.Client(target, timeout=1, shared_memory=False) as c:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if c.health() == "SERVING":
                            break
                    except npuk.NpukError:
                        pass
                    if proc.poll() is not None or \
                            time.monotonic() > deadline:
                        log.seek(0)
                        sys.exit("npukd not serving:\n" + log.read())
                    time.sleep(0.05)
            return asyncio.run(_main(target, args.requests))
        finally:
            proc.terminate()
            proc.wait()
            log.close()


if __name__ == "__main__":
    sys.exit(main())
