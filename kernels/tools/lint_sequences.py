#!/usr/bin/python3
"""Lint the runtime sequences of every registered kernel's NPU design (CI:
ctest npuk_lint_sequences).

What a sequence must do comes from the kernels' declarations
(kernels/<name>/kernel.cc, KernelSpec::design), as `npuk_txn_tool designs`
prints them: per kernel the core's entry, the design generator and one shim
stream per device argument (objectfifo, argument index, direction, BD,
bytes per item). Nothing here names a kernel.

Rules, each a way the prior attempt or mlir-aie issues got zeros or hangs
(reference/mlir_aie.md §1):
  R1 transfers use aiex.npu.dma_memcpy_nd, or the task API
     (dma_configure_task_for + dma_start_task); no hand-lowered
     writebd / address_patch / push_queue / blockwrite;
  R2 every output objectfifo (core -> shim) is waited on after its transfer:
     aiex.npu.dma_wait {symbol = @fifo}, or dma_await_task of a task
     configured with issue_token = true;
  R3 byte sizes equal the declared bytes per item times one N, the same for
     every transfer, N matches a @seq_n<N> name, and N is a multiple of
     the design's cores x columns (R7);
  R4 each fifo runs in the declared direction and travels as the declared
     runtime-sequence argument (the host binds argument i to data BO i,
     group_id(3+i)) on the declared BD, as kernels/tools/txn/designs.h
     encodes it for npu-sim and validates it at load time;
  R5 BD ids are distinct within a sequence (reusing a running BD is
     nondeterministic without a sync in between);
  R6 a windowed input (declared halo) is read as strided windows: sizes
     [1, 1, N, (item + halo)/4], strides [0, 0, item/4, 1] in i32 words,
     so the shim DMA cuts the overlapping windows out of the PCM itself;
  R7 the design's layout is the declared one: aie.device(npu1_<columns>col)
     with cores x columns compute cores (KernelSpec::design.cores and
     .columns, which npu-sim prices and the run sizes are multiples of).
Besides: the core links the declared AIE source (link_with = "<stem>.o"),
every registered kernel's generator exists, and every
kernels/*/*_design.py belongs to a registered kernel (a design nobody
serves is a kernel whose registration line is missing).

Usage:
  lint_sequences.py [--txn-tool PATH | --designs FILE.json] [FILE.mlir ...]
The declarations come from --designs (the JSON `npuk_txn_tool designs`
prints), else from running --txn-tool or $NPUK_TXN_TOOL (ctest sets it).
No files: lint every registered design for every standard N and every
mlir-aie era (aie_design.MODES).
Exit status 1 and one line per problem when a sequence is rejected, 2 when
the declarations cannot be read.
"""

import argparse
import contextlib
import glob
import io
import json
import os
import re
import runpy
import subprocess
import sys

KERNELS_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(KERNELS_DIR, "tools", "txn_design"))
import aie_design  # noqa: E402  (the design modes)
HAND_LOWERED = ("aiex.npu.writebd", "aiex.npu.address_patch",
                "aiex.npu.push_queue", "aiex.npu.blockwrite")
ELEM_BYTES = {"i8": 1, "i16": 2, "i32": 4, "bf16": 2, "f32": 4}

SEQ_RE = re.compile(
    r"(?:aie\.runtime_sequence|aiex\.runtime_sequence|func\.func)\s*"
    r"(@[\w$.]+)?\s*\(([^)]*)\)\s*\{")
ARG_RE = re.compile(r"%([\w$.]+)\s*:\s*memref<([\dx]+)x(\w+)>")
MEMCPY_RE = re.compile(
    r"aiex\.npu\.dma_memcpy_nd\s*\(\s*(?:\d+\s*,\s*\d+\s*,\s*)?%([\w$.]+)"
    r"\s*\[([^\]]*)\]\s*\[([^\]]*)\]\s*\[([^\]]*)\]\s*\)\s*\{([^}]*)\}")
WAIT_RE = re.compile(r"aiex\.npu\.dma_wait\s*\{[^}]*symbol\s*=\s*@([\w$.]+)")
TASK_RE = re.compile(
    r"%([\w$.]+)\s*=\s*aiex\.dma_configure_task_for\s*@([\w$.]+)\s*\{(.*?)"
    r"\}\s*\{([^}]*)\}", re.S)
TASK_BD_RE = re.compile(r"aie\.dma_bd\s*\(\s*%([\w$.]+)\s*:[^,]*,\s*(\d+)\s*,"
                        r"\s*(\d+)")
AWAIT_RE = re.compile(r"aiex\.dma_await_task\s*\(\s*%([\w$.]+)\s*\)")
START_RE = re.compile(r"aiex\.dma_start_task\s*\(\s*%([\w$.]+)\s*\)")
FIFO_RE = re.compile(r"aie\.objectfifo\s+@([\w$.]+)\s*\(\s*%([\w$.]+)\s*,")
TILE_RE = re.compile(r"%([\w$.]+)\s*=\s*aie\.tile\s*\(\s*(\d+)\s*,\s*(\d+)")
CALL_RE = re.compile(r"func\.call\s+@([\w$.]+)")
DEVICE_RE = re.compile(r"aie\.device\s*\(\s*npu1_(\d+)col\s*\)")
CORE_RE = re.compile(r"=\s*aie\.core\s*\(")
LINK_RE = re.compile(r'link_with\s*=\s*"([^"]*)"')


class ContractError(Exception):
    """The declarations could not be read."""


class GeneratorError(Exception):
    """A design generator failed."""


def parse_designs(text, origin="npuk_txn_tool designs"):
    """The JSON of `npuk_txn_tool designs` -> (kernels, batch sizes).

    kernels: {name: {"entry", "generator", "fifos": {fifo: stream dict}}}.
    """
    try:
        doc = json.loads(text)
        kernels = {}
        for k in doc["kernels"]:
            fifos = {s["fifo"]: s for s in k["streams"]}
            kernels[k["name"]] = {"entry": k["entry"],
                                  "generator": k["generator"],
                                  "source": k["source"],
                                  "cores": k.get("cores", 1),
                                  "columns": k.get("columns", 1),
                                  "batch_sizes": tuple(
                                      k.get("batch_sizes",
                                            doc["batch_sizes"])),
                                  "fifos": fifos}
        return kernels, tuple(doc["batch_sizes"])
    except (ValueError, KeyError, TypeError) as e:
        raise ContractError(f"{origin}: not the JSON of `npuk_txn_tool "
                            f"designs`: {e}") from e


def load_designs(designs_file=None, txn_tool=None):
    if designs_file:
        with open(designs_file) as f:
            return parse_designs(f.read(), designs_file)
    tool = txn_tool or os.environ.get("NPUK_TXN_TOOL")
    if not tool:
        raise ContractError(
            "no kernel declarations: pass --txn-tool "
            "<build>/kernels/tools/txn_tool/npuk_txn_tool (or set "
            "NPUK_TXN_TOOL; ctest does), or --designs FILE.json")
    try:
        out = subprocess.run([tool, "designs"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise ContractError(f"cannot run {tool} designs: {e}") from e
    return parse_designs(out, f"{tool} designs")


def _block(text, start):
    """The text of the brace block opening just before `start`."""
    depth, i = 1, start
    while i < len(text) and depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start:i - 1]


def lint_text(text, kernels, origin="<mlir>"):
    """Problems of one MLIR module against the declarations (empty = clean)."""
    problems = []
    by_entry = {k["entry"]: name for name, k in kernels.items()}
    calls = [by_entry[c] for c in CALL_RE.findall(text) if c in by_entry]
    if len(set(calls)) != 1:
        return [f"{origin}: cannot tell the kernel: the core must call exactly "
                f"one registered entry of {sorted(by_entry)}"]
    kernel = calls[0]
    contract = kernels[kernel]["fifos"]
    # The object the core links is the declared AIE source, compiled by
    # kernels/aie_build.cmake to <stem>.o.
    obj = os.path.splitext(os.path.basename(kernels[kernel]["source"]))[0] + ".o"
    links = set(LINK_RE.findall(text))
    if links != {obj}:
        problems.append(f"{origin}: the core links {sorted(links)} but the "
                        f"{kernel} declaration's source compiles to {obj}")
    # R7: the layout is the declaration's (KernelSpec::design.cores and
    # .columns): what npu-sim prices and the run sizes assume.
    cores, columns = kernels[kernel]["cores"], kernels[kernel]["columns"]
    device = DEVICE_RE.search(text)
    ncores = len(CORE_RE.findall(text))
    if (device is None or int(device.group(1)) != columns or
            ncores != cores * columns):
        problems.append(
            f"{origin}: the design has {ncores} compute cores on "
            f"{device.group(0) if device else 'no aie.device'} but the "
            f"{kernel} declaration says {cores} cores x {columns} columns "
            "(aie.device(npu1_" + str(columns) + "col)) (R7)")
    tiles = {v: int(row) for v, _, row in TILE_RE.findall(text)}
    fifo_producer = dict(FIFO_RE.findall(text))
    outputs = {f for f, s in contract.items() if not s["to_device"]}
    for f, s in contract.items():
        if f not in fifo_producer:
            problems.append(f"{origin}: objectfifo @{f} of the {kernel} "
                            "declaration is not declared")
            continue
        from_shim = tiles.get(fifo_producer[f]) == 0
        if from_shim != s["to_device"]:
            want = "shim -> core" if s["to_device"] else "core -> shim"
            problems.append(f"{origin}: objectfifo @{f} must run {want} as "
                            f"the {kernel} declaration says (R4)")
    seqs = [m for m in SEQ_RE.finditer(text)
            if m.group(0).startswith(("aie.", "aiex.")) or
            (m.group(1) or "").startswith("@sequence")]
    if not seqs:
        problems.append(f"{origin}: no runtime sequence")
    for m in seqs:
        name = (m.group(1) or "@<unnamed>")[1:]
        where = f"{origin}: sequence {name}"
        body = _block(text, m.end())
        args = {}
        for i, (arg, _, elem) in enumerate(ARG_RE.findall(m.group(2))):
            args[arg] = (i, ELEM_BYTES.get(elem, 0))
        for op in HAND_LOWERED:
            if op in body:
                problems.append(f"{where}: hand-lowered {op}; use "
                                "aiex.npu.dma_memcpy_nd (R1)")
        transfers = []  # (fifo, arg, bytes, bd id or None, position)
        for t in MEMCPY_RE.finditer(body):
            arg, sizes, attrs = t.group(1), t.group(3), t.group(5)
            fifo = re.search(r"metadata\s*=\s*@([\w$.]+)", attrs)
            bd = re.search(r"\bid\s*=\s*(\d+)", attrs)
            if not fifo:
                problems.append(f"{where}: dma_memcpy_nd of %{arg} has no "
                                "metadata naming its objectfifo")
                continue
            count = 1
            dims = [int(s.strip()) for s in sizes.split(",")]
            for s in dims:
                count *= s
            strides = [int(s.strip()) for s in t.group(4).split(",")]
            elem = args.get(arg, (None, 0))[1]
            want = contract.get(fifo.group(1))
            if want and want.get("halo_bytes", 0) and elem == 4:
                # R6: a windowed input reads n windows of (item + halo)
                # bytes at an item stride: sizes [1, 1, n, window/4],
                # strides [0, 0, item/4, 1] (i32 words).
                window = (want["bytes_per_item"] + want["halo_bytes"]) // 4
                stride = want["bytes_per_item"] // 4
                if (len(dims) != 4 or dims[3] != window or dims[0] != 1 or
                        dims[1] != 1 or strides != [0, 0, stride, 1]):
                    problems.append(
                        f"{where}: @{fifo.group(1)} must read windows of "
                        f"{window} words at a stride of {stride} (sizes "
                        f"[1, 1, N, {window}], strides [0, 0, {stride}, 1]) "
                        f"as the {kernel} declaration's halo says; it has "
                        f"sizes {dims} strides {strides} (R6)")
            transfers.append((fifo.group(1), arg, count * elem,
                              bd and int(bd.group(1)), t.start()))
        tasks = {}
        for t in TASK_RE.finditer(body):
            var, fifo, bds, attrs = t.groups()
            total, arg = 0, None
            for b in TASK_BD_RE.finditer(bds):
                arg = b.group(1)
                total += int(b.group(3)) * args.get(arg, (None, 0))[1]
            token = re.search(r"issue_token\s*=\s*true", attrs) is not None
            tasks[var] = (fifo, token)
            transfers.append((fifo, arg, total, None, t.start()))
        for var in START_RE.findall(body):
            if var not in tasks:
                problems.append(f"{where}: dma_start_task of unknown %{var}")
        for var in AWAIT_RE.findall(body):
            if var in tasks and not tasks[var][1]:
                problems.append(f"{where}: dma_await_task(%{var}) on a task "
                                "without issue_token = true (R1/R2)")
        if not transfers:
            problems.append(f"{where}: no transfers")
            continue
        # R2: every output waited on after its transfer.
        waits = [(w.group(1), w.start()) for w in WAIT_RE.finditer(body)]
        awaited = {tasks[v][0] for v in AWAIT_RE.findall(body)
                   if v in tasks and tasks[v][1]}
        for fifo in sorted(outputs):
            pos = [p for f, _, _, _, p in transfers if f == fifo]
            if not pos:
                problems.append(f"{where}: output @{fifo} is never "
                                "transferred")
            elif not (any(f == fifo and p > max(pos) for f, p in waits) or
                      fifo in awaited):
                problems.append(f"{where}: output @{fifo} is not waited on "
                                "(aiex.npu.dma_wait {symbol = @" + fifo +
                                "}) after its transfer: the run can complete "
                                "before the data lands (R2)")
        # R3, R4, R5.
        ns = set()
        bds = {}
        for fifo, arg, nbytes, bd, _ in transfers:
            if fifo not in contract:
                problems.append(f"{where}: transfer on @{fifo}, which the "
                                f"{kernel} declaration does not have")
                continue
            want = contract[fifo]
            # What one item moves: a windowed input's whole window.
            per_item = want["bytes_per_item"] + want.get("halo_bytes", 0)
            if arg in args and args[arg][0] != want["arg"]:
                problems.append(f"{where}: @{fifo} travels as argument "
                                f"{args[arg][0]} but the host binds it to "
                                f"argument {want['arg']} (R4)")
            if nbytes % per_item or nbytes == 0:
                problems.append(f"{where}: @{fifo} moves {nbytes} bytes, not a "
                                f"multiple of {per_item} per item (R3)")
            else:
                ns.add(nbytes // per_item)
            if bd is not None:
                if bd != want["bd_id"]:
                    problems.append(f"{where}: @{fifo} uses BD {bd} but the "
                                    f"{kernel} declaration says BD "
                                    f"{want['bd_id']} (R4)")
                if bd in bds:
                    problems.append(f"{where}: BD id {bd} used by @{bds[bd]} "
                                    f"and @{fifo} (R5)")
                bds[bd] = fifo
        if len(ns) > 1:
            problems.append(f"{where}: transfers imply different batch sizes "
                            f"{sorted(ns)} (R3)")
        for x in sorted(ns):
            if x % (cores * columns):
                problems.append(
                    f"{where}: moves {x} items, not a multiple of the "
                    f"{cores * columns} items of a round ({cores} cores x "
                    f"{columns} columns): the mem tile never hands out the "
                    "last partial round (R3)")
        named = re.fullmatch(r"seq_n(\d+)", name)
        if named and ns and int(named.group(1)) not in ns:
            problems.append(f"{where}: named for N={named.group(1)} but moves "
                            f"N={sorted(ns)} items (R3)")
    return problems


def generator_problems(kernels, root=KERNELS_DIR):
    """Registered kernels without their generator, generators without a
    registered kernel."""
    problems = []
    registered = set()
    for name, k in kernels.items():
        script = os.path.join(root, name, k["generator"])
        registered.add(os.path.normpath(script))
        if not os.path.isfile(script):
            problems.append(f"kernel {name}: its design generator "
                            f"{os.path.relpath(script, root)} (KernelSpec::"
                            "design.generator) does not exist")
    for script in sorted(glob.glob(os.path.join(root, "*", "*_design.py"))):
        if os.path.normpath(script) not in registered:
            problems.append(
                f"{os.path.relpath(script, root)} is the design of no "
                "registered kernel: add the kernel to NPUK_KERNELS in "
                "kernels/CMakeLists.txt (docs/ADDING_A_KERNEL.md) or delete it")
    return problems


def size_problems(kernels, root=KERNELS_DIR):
    """Generators whose batch sizes (--sizes, what the AIE build builds)
    differ from the C++ side's (txn::BatchSizesFor, what the daemon plans
    runs with)."""
    problems = []
    for name, k in kernels.items():
        script = os.path.join(root, name, k["generator"])
        if not os.path.isfile(script):
            continue
        out = subprocess.run([sys.executable, script, "--sizes"],
                             capture_output=True, text=True)
        sizes = tuple(int(x) for x in out.stdout.split()) if \
            out.returncode == 0 else ()
        if sizes != tuple(k["batch_sizes"]):
            problems.append(
                f"kernel {name}: {os.path.relpath(script, root)} --sizes "
                f"gives {list(sizes)} but the C++ side (txn::BatchSizesFor) "
                f"{list(k['batch_sizes'])}: the AIE build would ship "
                "sequences the daemon does not plan for")
    return problems


def run_generator(script, args):
    """The stdout of `script args` (a design generator, run as __main__),
    in this interpreter: one Python start-up instead of one per design x N
    x era. SystemExit other than 0 raises GeneratorError with its stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv, path = sys.argv, list(sys.path)  # generators insert their tools dir
    sys.argv = [script] + list(args)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            why = e.code if isinstance(e.code, str) else f"exit {e.code}"
            raise GeneratorError(f"{script} {' '.join(args)}: {why}: "
                                 f"{err.getvalue().strip()}") from None
    finally:
        sys.argv = argv
        sys.path[:] = path
    return out.getvalue()


def generated_designs(kernels, batch_sizes, root=KERNELS_DIR):
    """(origin, text) for every registered design x N x mlir-aie era
    (aie_design.MODES)."""
    for name, k in kernels.items():
        script = os.path.join(root, name, k["generator"])
        if not os.path.isfile(script):
            continue  # reported by generator_problems
        for n in k.get("batch_sizes", batch_sizes):
            for mode in aie_design.MODES:
                text = run_generator(script, ["--n", str(n), "--mode", mode])
                yield (f"{name}/{k['generator']} --n {n} --mode {mode}", text)


def main(argv):
    p = argparse.ArgumentParser(
        description="Lint NPU runtime sequences against the kernels' "
        "declarations")
    p.add_argument("--txn-tool", help="npuk_txn_tool to ask for the "
                   "declarations (default $NPUK_TXN_TOOL)")
    p.add_argument("--designs", help="the JSON `npuk_txn_tool designs` "
                   "printed, instead of running the tool")
    p.add_argument("files", nargs="*", help="MLIR files (default: every "
                   "registered design for every standard N)")
    a = p.parse_args(argv)
    try:
        kernels, batch_sizes = load_designs(a.designs, a.txn_tool)
    except ContractError as e:
        print(f"lint_sequences: {e}", file=sys.stderr)
        return 2
    problems = []
    if a.files:
        items = []
        for path in a.files:
            with open(path) as f:
                items.append((path, f.read()))
    else:
        problems += generator_problems(kernels)
        problems += size_problems(kernels)
        try:
            items = list(generated_designs(kernels, batch_sizes))
        except GeneratorError as e:
            print(f"lint_sequences: {e}", file=sys.stderr)
            return 1
    problems += [p for origin, text in items
                 for p in lint_text(text, kernels, origin)]
    for line in problems:
        print(line)
    print(f"lint_sequences: {len(kernels)} kernels, {len(items)} designs, "
          f"{len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
