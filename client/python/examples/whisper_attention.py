#!/usr/bin/python3
"""Whisper-base attention on npukd next to torch float32: one encoder
self-attention layer (8 heads x 1500 x 64), a decoder self-attention step
(1 query against a 448-token causal cache) and a cross-attention step
(1 query against the 1500 encoder frames).

    /usr/bin/python3 whisper_attention.py [unix:PATH|HOST:PORT] [--repeats 3]

The activations are synthetic but shaped like a trained model's: in every
head a third of the query rows point at one key (a peaked softmax), a third
attend to their neighbourhood through a positional component (a band), and
a third are near zero (a flat softmax over all keys). For each case it
prints the median relative error and the worst cosine per head against
torch's float32 result, and the wall time of Client.attention (quantisation,
output-scale estimate, the call) against torch's on this CPU.

Each case runs twice: as one request (the heads share the per-tensor
scales of q, k, v and one output scale), and as one request per head,
sent concurrently (every head its own scales). Heads that differ a lot,
as in the single-query steps here (each head's one query is peaked,
banded or flat), lose precision in the shared grids; the per-head
requests keep it at the price of more, smaller calls.
"""
import argparse
import concurrent.futures
import time

import numpy as np
import torch

import npuk

HEADS, D = 8, 64
ENCODER_FRAMES, DECODER_CONTEXT = 1500, 448


def positions(length, rng):
    """Sinusoidal position features [length, 64] (unit rows), so that
    q_i . k_j is largest for j near i."""
    freq = np.exp(-np.arange(D // 2) / (D // 2) * np.log(length))
    angle = np.arange(length)[:, None] * freq[None, :] * rng.uniform(0.5, 1.5)
    p = np.concatenate([np.sin(angle), np.cos(angle)], axis=1)
    return p / np.linalg.norm(p, axis=1, keepdims=True)


def head_activations(rng, lq, lk):
    """q [lq, 64], k, v [lk, 64] of one head with peaked, banded and flat
    query rows; query i sits at key position lk - lq + i."""
    offset = lk - lq
    content = rng.normal(0.0, 1.0, (lk, D))
    pos = positions(lk, rng)
    k = content + 4.0 * pos
    v = rng.normal(0.0, rng.uniform(0.5, 2.0), (lk, D))
    q = np.empty((lq, D))
    kind = np.arange(lq) % 3 if lq > 1 else rng.integers(0, 3, 1)
    for i, what in enumerate(kind):
        if what == 0:  # one key, scores ~20 above the rest
            j = rng.integers(0, offset + i + 1)
            q[i] = 160.0 * k[j] / np.dot(k[j], k[j])
        elif what == 1:  # its neighbourhood, a band of ~20 keys
            q[i] = 12.0 * pos[offset + i] + rng.normal(0.0, 0.3, D)
        else:  # nearly uniform over every key it sees
            q[i] = rng.normal(0.0, 0.05, D)
    return q, k, v


def activations(rng, lq, lk, heads=HEADS):
    qkv = [head_activations(rng, lq, lk) for _ in range(heads)]
    return [np.stack([h[t] for h in qkv])[None].astype(np.float32)
            for t in range(3)]  # [1, heads, L, 64] each


def torch_attention(q, k, v, causal):
    s = q @ k.transpose(-1, -2) / 8.0
    if causal:
        lq, lk = s.shape[-2], s.shape[-1]
        seen = torch.arange(lq)[:, None] + lk - lq
        hidden = torch.arange(lk)[None, :] > seen
        s = s.masked_fill(hidden, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def per_head(got, want):
    got, want = (x.reshape(HEADS, -1).double().numpy() for x in (got, want))
    rel = np.linalg.norm(got - want, axis=1) / np.linalg.norm(want, axis=1)
    cos = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) *
                                        np.linalg.norm(want, axis=1))
    return rel, cos


def timed(f, repeats):
    """(last result, median wall time in ms) of `repeats` calls after one
    warm-up call."""
    out = f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = f()
        times.append((time.perf_counter() - start) * 1e3)
    return out, float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", nargs="?", default=None,
                    help="unix:PATH or HOST:PORT (default: the daemon's "
                    "socket, as npukd picks it)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed calls per case, after one warm-up")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cases = [
        ("encoder self-attention", ENCODER_FRAMES, ENCODER_FRAMES, False),
        ("decoder self-attn step", 1, DECODER_CONTEXT, True),
        ("cross-attention step", 1, ENCODER_FRAMES, False),
    ]
    rows = []
    with npuk.Client(args.target, timeout=120) as client, \
            concurrent.futures.ThreadPoolExecutor(HEADS) as pool:
        print("npukd at %s; torch %s on %d threads"
              % (client.target, torch.__version__, torch.get_num_threads()))

        def per_head_requests(q, k, v, causal):
            heads = pool.map(
                lambda h: client.attention(q[:, h:h + 1], k[:, h:h + 1],
                                           v[:, h:h + 1], causal),
                range(HEADS))
            return torch.cat(list(heads), dim=1)

        for name, lq, lk, causal in cases:
            print("%s: %d heads x %d queries x %d keys%s ..."
                  % (name, HEADS, lq, lk, ", causal" if causal else ""),
                  flush=True)
            q, k, v = (torch.from_numpy(x) for x in activations(rng, lq, lk))
            with torch.no_grad():
                want, torch_ms = timed(
                    lambda: torch_attention(q, k, v, causal), args.repeats)
            for requests, call in (
                    ("1", lambda: client.attention(q, k, v, causal)),
                    ("%d, one a head" % HEADS,
                     lambda: per_head_requests(q, k, v, causal))):
                ours, ours_ms = timed(call, args.repeats)
                rel, cos = per_head(ours, want)
                rows.append((name, lq, lk, "yes" if causal else "no",
                             requests, np.median(rel), cos.min(), ours_ms,
                             torch_ms))
    print()
    print("%-23s %4s %4s %6s %-13s %8s %8s %8s %8s" % (
        "case", "Lq", "Lk", "causal", "requests", "rel.err", "min cos",
        "npukd ms", "torch ms"))
    for r in rows:
        print("%-23s %4d %4d %6s %-13s %7.2f%% %8.5f %8.1f %8.1f" % (
            r[0], r[1], r[2], r[3], r[4], 100 * r[5], r[6], r[7], r[8]))
    print("\nrel.err: median over the heads of |npukd - torch| / |torch|; "
          "min cos: the worst head's cosine; npukd ms: Client.attention's "
          "wall time (quantisation, output-scale estimate, the requests), "
          "median of %d calls; torch ms: torch float32 on this CPU."
          % args.repeats)


if __name__ == "__main__":
    main()
