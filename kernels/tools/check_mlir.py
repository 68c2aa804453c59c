#!/usr/bin/python3
"""Parse and verify every kernel's NPU design with a real MLIR parser, and
check structurally what that parser cannot see (CI: ctest npuk_check_mlir).

For every kernels/*/*_design.py, every standard batch size and every
mlir-aie era (aie_design.MODES):
  M1 the check form (aie_design.emit_check: the design in generic op form,
     its region ops made registered ones) goes through `mlir-opt
     --allow-unregistered-dialect` (Debian's mlir-19-tools): the parser and
     verifier check the core's func.call against the func.func declaration
     (arity and types), the memref.load / arith / scf ops, every SSA value's
     type at each use, unique symbol names;
  S1 the custom-form text aiecc compiles (aie_design.emit) declares and
     calls the entry with exactly the types the check form has, so M1
     speaks for the file aiecc sees;
  S2 the declaration matches the extern "C" prototype in the AIE source the
     core links (<stem>.cc for link_with "<stem>.o"): parameter count, a
     memref of the right element width for each pointer, i32 for each
     int32_t; an output fifo's view is passed to a non-const pointer;
  S3 each fifo's tile-side memref holds exactly its item_bytes;
  S4 the text is in its era's syntax: the runtime-sequence op, the x,y
     operands of dma_memcpy_nd, and link_with on the declaration or on the
     core, never both.
What neither sees (fifo directions, argument indices, BDs, byte counts,
waits) is kernels/tools/lint_sequences.py's; stack and tile memory are
kernels/tools/stack_sizes.py's.

Usage: check_mlir.py [--mlir-opt PATH] [--n N ...] [--mode M ...]
                     [FILE_design.py ...]
mlir-opt: --mlir-opt, else $NPUK_MLIR_OPT, else mlir-opt-19 / mlir-opt on
PATH or /usr/lib/llvm-19/bin/mlir-opt. Exit 1 with one line per problem
(mlir-opt's diagnostics indented below), 2 when mlir-opt is missing.
"""

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS_DIR = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "txn_design"))
import aie_design  # noqa: E402

# The batch sizes kernels/aie_build.cmake builds: each design's
# aie_design.batch_sizes(granule) (the generator's --sizes).
ELEM_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "bf16": 16, "f32": 32}
C_BITS = {"int8_t": 8, "uint8_t": 8, "int16_t": 16, "uint16_t": 16,
          "int32_t": 32, "uint32_t": 32, "int64_t": 64, "uint64_t": 64,
          "float": 32}

DECL_RE = re.compile(r"func\.func\s+private\s+@([\w$.]+)\s*\(([^)]*)\)")
CALL_RE = re.compile(r"func\.call\s+@([\w$.]+)\s*\(([^)]*)\)\s*:\s*"
                     r"\(([^)]*)\)")
PROTO_RE = re.compile(r'extern\s+"C"\s+void\s+([\w]+)\s*\(([^)]*)\)')


class ToolMissing(Exception):
    pass


def find_mlir_opt(explicit=None):
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise ToolMissing(f"--mlir-opt {explicit} is not an executable")
    for cand in (os.environ.get("NPUK_MLIR_OPT"),
                 shutil.which("mlir-opt-19"), shutil.which("mlir-opt"),
                 "/usr/lib/llvm-19/bin/mlir-opt"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise ToolMissing(
        "mlir-opt not found: install Debian's mlir-19-tools "
        "(scripts/install-deps.sh does), or pass --mlir-opt / set "
        "NPUK_MLIR_OPT")


def load_design(path):
    """(DESIGN, CORE) of one kernels/<k>/<k>_design.py."""
    name = "npuk_design_" + os.path.basename(path)[:-3]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.DESIGN, mod.CORE


def design_files(root=KERNELS_DIR):
    return sorted(glob.glob(os.path.join(root, "*", "*_design.py")))


def run_mlir_opt(mlir_opt, text, split=False):
    """mlir-opt's diagnostics for one module ('' when it verifies), or for
    several separated by `// -----` lines with split=True."""
    r = subprocess.run([mlir_opt, "--allow-unregistered-dialect",
                        "--verify-each", "-o", os.devnull] +
                       (["--split-input-file"] if split else []) + ["-"],
                       input=text, capture_output=True, text=True)
    if r.returncode == 0:
        return ""
    return (r.stderr or r.stdout or f"exit status {r.returncode}").strip()


def _types(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _memref_bits(t):
    m = re.fullmatch(r"memref<([\dx]+)x(\w+)>", t)
    if not m:
        return None
    count = 1
    for dim in m.group(1).split("x"):
        count *= int(dim)
    return count, ELEM_BITS.get(m.group(2))


def prototype(source, entry):
    """[(const?, pointer?, bits)] of `extern "C" void entry(...)` in source,
    or None when the source has no such definition or declaration."""
    with open(source) as f:
        text = re.sub(r"//[^\n]*", "", f.read())
    for name, params in PROTO_RE.findall(text):
        if name != entry:
            continue
        out = []
        for p in _types(params):
            is_ptr = "*" in p
            words = p.replace("*", " ").split()
            base = next((w for w in words if w in C_BITS), None)
            out.append(("const" in words, is_ptr, C_BITS.get(base), p))
        return out
    return None


def structural_problems(design, core, text, check_text, mode, origin,
                        kernel_dir):
    problems = []
    d = design
    syn = aie_design.MODES[mode]
    want = list(d.kernel_args)
    # S1: what aiecc sees declares and calls with the check form's types.
    decls = [(f, _types(a)) for f, a in DECL_RE.findall(text)]
    decl = [a for f, a in decls if f == d.func]
    if len(decl) != 1:
        problems.append(f"{origin}: {len(decl)} func.func declarations of "
                        f"@{d.func}, want 1")
    elif decl[0] != want:
        problems.append(f"{origin}: the module declares @{d.func}"
                        f"({', '.join(decl[0])}) but the design's "
                        f"kernel_args are ({', '.join(want)})")
    calls = [(f, _types(ops), _types(ts)) for f, ops, ts in
             CALL_RE.findall(text)]
    for f, ops, ts in calls:
        if f != d.func:
            problems.append(f"{origin}: the core calls @{f}, not the "
                            f"design's entry @{d.func}")
        elif ts != want or len(ops) != len(want):
            problems.append(
                f"{origin}: func.call @{f} passes {len(ops)} operands of "
                f"types ({', '.join(ts)}) to a declaration of "
                f"({', '.join(want)})")
    if not calls:
        problems.append(f"{origin}: the core never calls @{d.func}")
    if check_text.count(f'callee = @{d.func}') != len(calls):
        problems.append(f"{origin}: the check form has a different number "
                        "of calls than the module (aie_design.emit_check)")
    # S2: the declaration is the C++ prototype.
    source = os.path.join(kernel_dir, os.path.splitext(d.obj)[0] + ".cc")
    if not os.path.isfile(source):
        problems.append(f"{origin}: the core links {d.obj} but "
                        f"{os.path.relpath(source, KERNELS_DIR)} does not "
                        "exist")
    else:
        proto = prototype(source, d.func)
        rel = os.path.relpath(source, KERNELS_DIR)
        if proto is None:
            problems.append(f'{origin}: {rel} defines no extern "C" void '
                            f"{d.func}(...)")
        elif len(proto) != len(want):
            problems.append(
                f"{origin}: @{d.func} is declared with {len(want)} "
                f"parameters but {rel} defines it with {len(proto)} "
                f"({', '.join(p[3] for p in proto)})")
        else:
            outputs = {f.name for f in d.fifos if not f.to_core}
            op_names = []
            for f, ops, _ in calls:
                if f == d.func:
                    op_names = [o.lstrip("%") for o in ops]
            for i, ((const, ptr, bits, ctext), mt) in enumerate(
                    zip(proto, want)):
                mb = _memref_bits(mt)
                if ptr != (mb is not None):
                    problems.append(
                        f"{origin}: parameter {i} of @{d.func} is {mt} but "
                        f"{rel} has `{ctext}`")
                elif ptr and mb[1] != bits:
                    problems.append(
                        f"{origin}: parameter {i} of @{d.func} is {mt} "
                        f"({mb[1]}-bit elements) but {rel} has `{ctext}`")
                elif not ptr and ELEM_BITS.get(mt) != bits:
                    problems.append(
                        f"{origin}: parameter {i} of @{d.func} is {mt} but "
                        f"{rel} has `{ctext}`")
                if (ptr and const and i < len(op_names) and
                        op_names[i] in outputs):
                    problems.append(
                        f"{origin}: output view %{op_names[i]} is passed as "
                        f"parameter {i}, which {rel} declares const "
                        f"(`{ctext}`): the kernel cannot write it")
    # S3: tile-side buffers hold the contract's bytes.
    for f in d.fifos:
        bits = ELEM_BITS.get(f.elem)
        if bits is None or f.count * bits // 8 != f.item_bytes:
            problems.append(f"{origin}: @{f.name} is {aie_design.memref(f)} "
                            f"on the tile but {f.item_bytes} B per item in "
                            "the device layout")
    # S4: the era's syntax.
    other = ({"aie.runtime_sequence", "aiex.runtime_sequence"} -
             {syn.sequence_op}).pop()
    if (re.search(re.escape(syn.sequence_op) + r"\b", text) is None or
            re.search(re.escape(other) + r"\b", text)):
        problems.append(f"{origin}: mode {mode} needs {syn.sequence_op}")
    memcpys = re.findall(r"aiex\.npu\.dma_memcpy_nd\s*\(\s*([^%\s])?", text)
    if any(bool(x) != syn.memcpy_xy for x in memcpys):
        problems.append(f"{origin}: mode {mode} "
                        f"{'needs' if syn.memcpy_xy else 'forbids'} the x,y "
                        "operands of dma_memcpy_nd")
    on_decl = re.search(r"func\.func[^\n]*link_with", text) is not None
    on_core = re.search(r"\}\s*\{[^}]*link_with", text) is not None
    if on_decl == on_core or on_decl != syn.func_link_with:
        problems.append(
            f"{origin}: mode {mode} links the object on the "
            f"{'func.func declaration' if syn.func_link_with else 'aie.core'}"
            f" only (found: declaration {on_decl}, core {on_core})")
    return problems


def check(files, batch_sizes, modes, mlir_opt):
    problems, count = [], 0
    to_verify = []  # (origin, check-form text), verified together below
    for path in files:
        try:
            design, core = load_design(path)
        except Exception as e:  # a broken generator is a finding, not a crash
            problems.append(f"{os.path.relpath(path, KERNELS_DIR)}: cannot "
                            f"load DESIGN and CORE: {e}")
            continue
        rel = os.path.relpath(path, KERNELS_DIR)
        sizes = batch_sizes or aie_design.batch_sizes(
            aie_design.granule(design))
        for n in sizes:
            for mode in modes:
                origin = f"{rel} --n {n} --mode {mode}"
                count += 1
                try:
                    text = aie_design.emit(design, n, core, mode)
                    check_text = aie_design.emit_check(design, n, core, mode)
                except ValueError as e:
                    problems.append(f"{origin}: {e}")
                    continue
                to_verify.append((origin, check_text))
                problems += structural_problems(
                    design, core, text, check_text, mode, origin,
                    os.path.dirname(path))
    for origin, diag in verify_all(mlir_opt, to_verify):
        problems.append(f"{origin}: mlir-opt rejects the check form (M1):"
                        "\n    " + diag.replace("\n", "\n    "))
    return problems, count


def verify_all(mlir_opt, modules):
    """[(origin, diagnostics)] of the (origin, text) modules mlir-opt
    rejects. One mlir-opt run over all of them (--split-input-file: each
    module verified on its own), so the ~700 designs cost one process start;
    only when that run fails is each module run alone, to say which."""
    if not modules:
        return []
    joined = "\n// -----\n".join(text for _, text in modules)
    if not run_mlir_opt(mlir_opt, joined, split=True):
        return []
    found = []
    for origin, text in modules:
        diag = run_mlir_opt(mlir_opt, text)
        if diag:
            found.append((origin, diag))
    return found


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mlir-opt", help="mlir-opt to use")
    p.add_argument("--n", type=int, action="append",
                   help="batch size (repeatable; default every size the AIE "
                   "build builds for the design)")
    p.add_argument("--mode", action="append", choices=list(aie_design.MODES),
                   help="mlir-aie era (repeatable; default all)")
    p.add_argument("files", nargs="*", help="design generators (default "
                   "kernels/*/*_design.py)")
    a = p.parse_args(argv)
    try:
        mlir_opt = find_mlir_opt(a.mlir_opt)
    except ToolMissing as e:
        print(f"check_mlir: {e}", file=sys.stderr)
        return 2
    files = [os.path.abspath(f) for f in a.files] or design_files()
    problems, count = check(files, a.n,
                            a.mode or list(aie_design.MODES), mlir_opt)
    for line in problems:
        print(line)
    print(f"check_mlir: {len(files)} generators, {count} designs checked "
          f"with {mlir_opt}, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
