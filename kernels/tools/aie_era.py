#!/usr/bin/python3
"""Which design mode (aie_design.MODES) the installed mlir-aie accepts, by
asking its aie-opt. kernels/aie_build.cmake runs this at configure time and
passes the answer to every design generator (--mode).

For each mode, newest first, a small design in exactly the text our
emitter writes for that mode (aie_design.emit: objectfifos, the core loop,
func.call, the runtime sequence, dma_memcpy_nd, dma_wait) is given to
`aie-opt FILE` (parse and verify only). The first mode it accepts wins,
with one exception parsing cannot see: func.func accepts any extra
attribute, so an aie-opt before PR #2922 parses a func-level link_with and
aiecc then silently links nothing. "func-link" is therefore chosen only
when aie-opt also has the pass that consumes it,
--aie-assign-core-link-files (PR #2922).

Usage: aie_era.py [--aie-opt PATH] [-v]
Prints the mode on stdout; exit 1 (with every mode's diagnostics) when none
is accepted, 2 when aie-opt cannot be run.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "txn_design"))
import aie_design  # noqa: E402

LINK_PASS = "aie-assign-core-link-files"

PROBE = aie_design.Design(
    kernel="probe", func="npuk_probe", obj="npuk_probe.o",
    fifos=(aie_design.Fifo("of_out", "i32", 16, 64, False, 1, 0),
           aie_design.Fifo("of_in", "i32", 16, 64, True, 0, 1)),
    kernel_args=("memref<16xi32>", "memref<16xi32>"),
    stack_size=1024)
PROBE_CORE = ("func.call @npuk_probe(%of_in, %of_out) : "
              "(memref<16xi32>, memref<16xi32>) -> ()")


def _run(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RuntimeError(f"cannot run {' '.join(cmd)}: {e}") from e
    return r.returncode, (r.stdout + r.stderr)


def probe(aie_opt, log=None):
    """(mode or None, {mode: diagnostics}) for this aie-opt."""
    code, help_text = _run([aie_opt, "--help"])
    if code:
        raise RuntimeError(f"{aie_opt} --help failed: {help_text.strip()}")
    has_link_pass = LINK_PASS in help_text
    diags = {}
    with tempfile.TemporaryDirectory(prefix="npuk_era_") as tmp:
        for mode, syn in aie_design.MODES.items():
            path = os.path.join(tmp, f"probe_{mode}.mlir")
            with open(path, "w") as f:
                f.write(aie_design.emit(PROBE, 4, PROBE_CORE, mode))
            code, out = _run([aie_opt, path, "-o", os.devnull])
            if code == 0 and syn.func_link_with and not has_link_pass:
                code, out = 1, (f"parses, but {aie_opt} has no --{LINK_PASS} "
                                "pass, so a func-level link_with would be "
                                "ignored (needs mlir-aie PR #2922)")
            diags[mode] = out.strip() or "accepted"
            if log:
                print(f"aie_era: {mode}: "
                      f"{'accepted' if code == 0 else 'rejected'}", file=log)
            if code == 0:
                return mode, diags
    return None, diags


def find_aie_opt(explicit=None):
    for c in (explicit, os.environ.get("NPUK_AIE_OPT"), shutil.which("aie-opt")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--aie-opt", help="aie-opt (default $NPUK_AIE_OPT, PATH)")
    p.add_argument("-v", "--verbose", action="store_true")
    a = p.parse_args(argv)
    aie_opt = find_aie_opt(a.aie_opt)
    if not aie_opt:
        print("aie_era: aie-opt not found: activate the mlir-aie environment "
              "or pass --aie-opt", file=sys.stderr)
        return 2
    try:
        mode, diags = probe(aie_opt, sys.stderr if a.verbose else None)
    except RuntimeError as e:
        print(f"aie_era: {e}", file=sys.stderr)
        return 2
    if mode is None:
        print(f"aie_era: {aie_opt} accepts none of our design modes; it may "
              "be older than mlir-aie PR #1640 (Jul 2024) or newer than "
              "kernels/tools/txn_design/aie_design.py knows. Diagnostics:",
              file=sys.stderr)
        for m, d in diags.items():
            print(f"--- {m} ({aie_design.MODES[m].era}):\n{d}",
                  file=sys.stderr)
        return 1
    print(mode)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
