#!/usr/bin/python3
"""Stack sizes of the AIE cores from measured frame sizes, checked against
each design's stack_size and the 64 KB tile (CI: ctest npuk_design_stacks;
the AIE build: kernels/aie_build.cmake, on the Peano objects).

Per kernels/*/*_design.py, the AIE source its core links (<stem>.cc for
link_with "<stem>.o") is compiled with -ffunction-sections
-fstack-size-section, and:
  frames    the .stack_sizes section gives each function's frame;
  call tree relocations in each function's text section name its callees
            (an over-approximation: any function whose address it takes
            counts), so the worst path from the entry is a sum of frames;
            recursion is rejected (the stack would be unbounded);
  required  round_up(worst path x FACTOR + HELPER_ALLOWANCE, 256), where
            HELPER_ALLOWANCE covers callees outside the object (compiler
            runtime helpers such as __muldi3 on AIE2, memset/memcpy), which
            have no entry here;
  checks    the design's stack_size >= required, and stack_size + FIFO
            buffers (depth x item bytes of every fifo, the core end) + the
            core's own buffers (Design.buffers) + static data (.data/.rodata/.bss of the object: on AIE2 all of it
            lives in the tile's 64 KB data memory with the stack) <= 64 KB.
mlir-aie puts the FIFO buffers right after the stack
(lib/Targets/AIETargetLdScript.cpp); an overrun corrupts them silently.

Two measurements:
  --peano DIR  Peano (llvm-aie) itself, --target=aie2-none-unknown-elf: the
               real frames. FACTOR 1.0.
  default      a HOST PROXY, not Peano: clang++-14 --target=armv7a-none-eabi
               -ffreestanding -O2 (a 32-bit target with 4-byte pointers and
               int32, like AIE2's scalar side). Frame sizes follow mostly from
               the arrays on the stack, which are the same on both, but
               register spills, alignment and inlining differ, so the proxy
               gets FACTOR 1.5. It cannot prove the AIE2 frame fits; the
               AIE build repeats the check on the Peano objects.

Usage: stack_sizes.py [--peano DIR | --cxx CLANG] [--readobj PATH]
                      [--object FILE.o --design FILE_design.py] [--json]
                      [FILE_design.py ...]
Exit 1 with one line per problem, 2 when the compiler or readobj is missing.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS_DIR = os.path.normpath(os.path.join(HERE, ".."))
ROOT = os.path.normpath(os.path.join(KERNELS_DIR, ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "txn_design"))
import aie_design  # noqa: E402
import check_mlir  # noqa: E402  (load_design, design_files)

PROXY_FACTOR = 1.5
PEANO_FACTOR = 1.0
HELPER_ALLOWANCE = 512
ROUND = 256
DATA_PREFIXES = (".data", ".rodata", ".bss", ".sdata", ".sbss")
COMMON_FLAGS = ["-O2", "-std=c++20", "-DNDEBUG", "-fconstexpr-steps=100000000",
                "-ffunction-sections", "-fdata-sections",
                "-fstack-size-section", "-fno-exceptions", "-fno-rtti"]
PROXY_FLAGS = ["--target=armv7a-none-eabi", "-ffreestanding",
               "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
               "-isystem", os.path.join(HERE, "stack_proxy", "include")]
PEANO_FLAGS = ["--target=aie2-none-unknown-elf", "-Wno-parentheses",
               "-Wno-attributes", "-Wno-macro-redefined", "-Wno-empty-body"]


class ToolMissing(Exception):
    pass


def _tool(candidates, what):
    for c in candidates:
        if not c:
            continue
        path = c if os.path.sep in c else shutil.which(c)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise ToolMissing(f"{what} not found (tried {', '.join(filter(None, candidates))})")


def round_up(x, to=ROUND):
    return (x + to - 1) // to * to


def required_stack(path_bytes, factor):
    return round_up(int(path_bytes * factor + 0.999) + HELPER_ALLOWANCE)


def _readobj(readobj, args, obj):
    return subprocess.run([readobj] + args + [obj], check=True,
                          capture_output=True, text=True).stdout


def parse_object(readobj, obj):
    """{frames: {fn: bytes}, calls: {fn: set(callee)}, external: {fn:
    set(undefined callee)}, data: bytes} of one relocatable object."""
    frames = {}
    for fns, size in re.findall(
            r"Functions:\s*\[([^\]]*)\]\s*\n\s*Size:\s*(0x[0-9A-Fa-f]+|\d+)",
            _readobj(readobj, ["--stack-sizes"], obj)):
        for fn in fns.split(","):
            frames[fn.strip()] = int(size, 0)
    symbols = {}  # name -> (type, section)
    by_section = {}
    for body in re.findall(r"Symbol \{(.*?)\n\s*\}",
                           _readobj(readobj, ["--symbols"], obj), re.S):
        name = re.search(r"Name:\s*(\S*)", body)
        typ = re.search(r"Type:\s*(\w+)", body)
        sec = re.search(r"Section:\s*(\S+)", body)
        if not (name and typ and sec) or not name.group(1):
            continue
        symbols[name.group(1)] = (typ.group(1), sec.group(1))
        if typ.group(1) == "Function":
            by_section.setdefault(sec.group(1), set()).add(name.group(1))
    calls = {fn: set() for fn in frames}
    external = {fn: set() for fn in frames}
    for sec, body in re.findall(r"Section \(\d+\) (\S+) \{(.*?)\n\s*\}",
                                _readobj(readobj, ["-r"], obj), re.S):
        m = re.fullmatch(r"\.rela?(\.text.*)", sec)
        if not m:
            continue
        # Every function in the text section calls every target: exact with
        # -ffunction-sections, conservative without.
        callers = by_section.get(m.group(1), set())
        for target in re.findall(r"^\s*0x[0-9A-Fa-f]+\s+\S+\s+(\S+)", body,
                                 re.M):
            typ, tsec = symbols.get(target, ("None", "Undefined"))
            for fn in callers:
                if target in frames and target != fn:
                    calls.setdefault(fn, set()).add(target)
                elif target == fn:
                    calls.setdefault(fn, set()).add(fn)
                elif tsec == "Undefined" and typ in ("None", "Function"):
                    external.setdefault(fn, set()).add(target)
    data = 0
    for body in re.findall(r"Section \{(.*?)\n\s*\}",
                           _readobj(readobj, ["--sections"], obj), re.S):
        name = re.search(r"Name:\s*(\S+)", body)
        size = re.search(r"\bSize:\s*(\d+)", body)
        if (name and size and "SHF_ALLOC" in body and
                "SHF_EXECINSTR" not in body and
                name.group(1).startswith(DATA_PREFIXES)):
            data += int(size.group(1))
    return {"frames": frames, "calls": calls, "external": external,
            "data": data}


def worst_path(info, entry):
    """(bytes, [fn...]) of the deepest stack from entry; raises ValueError on
    recursion or a missing entry."""
    frames, calls = info["frames"], info["calls"]
    if entry not in frames:
        raise ValueError(f"no .stack_sizes entry for {entry} (is it defined "
                         "in the object, compiled with -fstack-size-section?)")
    memo = {}

    def walk(fn, stack):
        if fn in stack:
            raise ValueError("recursion " + " -> ".join(stack + [fn]) +
                             ": the stack is unbounded")
        if fn not in memo:
            best = (0, [])
            for callee in sorted(calls.get(fn, ())):
                sub = walk(callee, stack + [fn])
                if sub[0] > best[0]:
                    best = sub
            memo[fn] = (frames.get(fn, 0) + best[0], [fn] + best[1])
        return memo[fn]

    return walk(entry, [])


def compile_object(cxx, flags, source, out):
    cmd = [cxx] + COMMON_FLAGS + flags + ["-I", ROOT, "-c", source, "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise ValueError(f"cannot compile {source}: {' '.join(cmd)}\n" +
                         r.stderr.strip())


def measure(design_path, obj, readobj, factor, measured_by):
    """One kernel's report row (a dict) and its problems."""
    d, _ = check_mlir.load_design(design_path)
    rel = os.path.relpath(design_path, KERNELS_DIR)
    info = parse_object(readobj, obj)
    path_bytes, path = worst_path(info, d.func)
    helpers = sorted(set().union(*(info["external"].get(f, set())
                                   for f in path)) if path else set())
    row = {
        "kernel": d.kernel, "design": rel, "entry": d.func,
        "measured_by": measured_by,
        "path": [(f, info["frames"].get(f, 0)) for f in path],
        "path_bytes": path_bytes, "external_callees": helpers,
        "factor": factor, "helper_allowance": HELPER_ALLOWANCE,
        "required": required_stack(path_bytes, factor),
        "stack_size": d.stack_size,
        "fifo_bytes": aie_design.fifo_bytes(d) + aie_design.buffer_bytes(d),
        "data_bytes": info["data"],
    }
    row["tile_bytes"] = row["stack_size"] + row["fifo_bytes"] + row["data_bytes"]
    problems = []
    if d.stack_size < row["required"]:
        problems.append(
            f"{rel}: stack_size = {d.stack_size} but {d.func}'s deepest call "
            f"path needs {path_bytes} B ({' -> '.join(f'{f} {b}' for f, b in row['path'])}"
            f", {measured_by}); with the margin (x{factor} + "
            f"{HELPER_ALLOWANCE} B, rounded to {ROUND}) set stack_size >= "
            f"{row['required']}")
    if row["tile_bytes"] > aie_design.TILE_MEMORY_BYTES:
        problems.append(
            f"{rel}: stack {d.stack_size} + FIFO and core buffers "
            f"{row['fifo_bytes']} "
            f"+ static data {row['data_bytes']} = {row['tile_bytes']} B "
            f"exceed the {aie_design.TILE_MEMORY_BYTES} B tile data memory")
    return row, problems


def format_row(r):
    path = " -> ".join(f"{f} {b}" for f, b in r["path"])
    ext = f"; external {', '.join(r['external_callees'])}" \
        if r["external_callees"] else ""
    return (f"{r['kernel']:12} path {r['path_bytes']:6} B ({path}{ext}) -> "
            f"required {r['required']:6} B, stack_size {r['stack_size']:6} B; "
            f"tile {r['stack_size']} + buffers {r['fifo_bytes']} + data "
            f"{r['data_bytes']} = {r['tile_bytes']} / "
            f"{aie_design.TILE_MEMORY_BYTES} B")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--peano", help="llvm-aie install dir: measure with Peano")
    g.add_argument("--cxx", help="host clang++ for the proxy (default "
                   "clang++-14)")
    p.add_argument("--readobj", help="llvm-readobj (default the compiler's "
                   "sibling, else llvm-readobj-14)")
    p.add_argument("--object", help="a compiled object to check instead of "
                   "compiling (needs exactly one --design)")
    p.add_argument("--design", help="the design generator of --object")
    p.add_argument("--json", action="store_true", help="print rows as JSON")
    p.add_argument("files", nargs="*", help="design generators (default "
                   "kernels/*/*_design.py)")
    a = p.parse_args(argv)
    try:
        if a.peano:
            cxx = _tool([os.path.join(a.peano, "bin", "clang++")], "Peano clang++")
            flags, factor, by = PEANO_FLAGS, PEANO_FACTOR, "Peano"
        else:
            cxx = _tool([a.cxx, "clang++-14", "clang++"], "clang++")
            flags, factor, by = PROXY_FLAGS, PROXY_FACTOR, \
                "host proxy clang++-14 armv7a, not Peano"
        readobj = _tool([a.readobj,
                         os.path.join(os.path.dirname(cxx), "llvm-readobj"),
                         "llvm-readobj-14", "llvm-readobj"], "llvm-readobj")
    except ToolMissing as e:
        print(f"stack_sizes: {e}", file=sys.stderr)
        return 2
    rows, problems = [], []
    if a.object:
        if not a.design:
            p.error("--object needs --design")
        jobs = [(os.path.abspath(a.design), a.object)]
        tmp = None
    else:
        tmp = tempfile.TemporaryDirectory(prefix="npuk_stack_")
        jobs = [(os.path.abspath(f), None)
                for f in (a.files or check_mlir.design_files())]
    for design_path, obj in jobs:
        rel = os.path.relpath(design_path, KERNELS_DIR)
        try:
            if obj is None:
                d, _ = check_mlir.load_design(design_path)
                source = os.path.join(os.path.dirname(design_path),
                                      os.path.splitext(d.obj)[0] + ".cc")
                obj = os.path.join(tmp.name, d.kernel + ".o")
                compile_object(cxx, flags, source, obj)
            row, found = measure(design_path, obj, readobj, factor, by)
        except (ValueError, subprocess.CalledProcessError, OSError) as e:
            problems.append(f"{rel}: {e}")
            continue
        rows.append(row)
        problems += found
    if a.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            print(format_row(r))
    for line in problems:
        print(line)
    print(f"stack_sizes: {len(rows)} kernels measured ({by}), "
          f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
