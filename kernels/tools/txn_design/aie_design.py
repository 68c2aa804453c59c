"""Shared MLIR emitter for our npu1_1col designs (kernels/*/*_design.py).

Emits raw MLIR text, no mlir-aie Python bindings needed, so CI can check the
designs without the toolchain. Two printers share one description:
  emit()       the custom-form module aiecc compiles, in the syntax of one
               mlir-aie era (MODES below);
  emit_check() the same module in MLIR's generic op form, with the parts a
               stock MLIR can verify made of registered ops (see its
               docstring), for kernels/tools/check_mlir.py and Debian's
               mlir-opt.

mlir-aie changed its syntax three times in ways our designs touch
(Xilinx/mlir-aie PRs; reference/mlir_aie.md §0):
  #1971 (Dec 2024)  aiex.npu.dma_memcpy_nd lost its x,y operands;
  #2708 (Nov 2025)  aiex.runtime_sequence became aie.runtime_sequence (the
                    aiex op is gone, not aliased);
  #2922 (Mar 2026)  link_with moved from aie.core to the func.func
                    declaration (core-level link_with still accepted with a
                    deprecation warning; both on one core is an error).
No single text is accepted by every release, so a design is emitted for
one era, MODES[mode]; kernels/tools/aie_era.py picks the mode the installed
aie-opt accepts (kernels/aie_build.cmake runs it at configure time).
"""

from dataclasses import dataclass
import re

TILE_MEMORY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Syntax:
    """What one mlir-aie era accepts."""
    sequence_op: str      # runtime sequence op name
    memcpy_xy: bool       # dma_memcpy_nd takes the x,y operands
    func_link_with: bool  # link_with on func.func (else on aie.core)
    era: str              # the releases, for messages and docs


# Newest first: kernels/tools/aie_era.py probes in this order.
MODES = {
    "func-link": Syntax("aie.runtime_sequence", False, True,
                        "mlir-aie with PR #2922 (Mar 2026) and later"),
    "core-link": Syntax("aie.runtime_sequence", False, False,
                        "PR #2708 (Nov 2025) up to before PR #2922"),
    "aiex-seq": Syntax("aiex.runtime_sequence", False, False,
                       "PR #1971 (Dec 2024) up to before PR #2708"),
    "xy-memcpy": Syntax("aiex.runtime_sequence", True, False,
                        "PR #1640 (Jul 2024) up to before PR #1971"),
}
DEFAULT_MODE = "func-link"
# --legacy (kept for old command lines) is the oldest era.
LEGACY_MODE = "xy-memcpy"


@dataclass(frozen=True)
class Fifo:
    name: str
    elem: str        # MLIR element type of the tile-side buffer, e.g. "i16"
    count: int       # elements per item on the tile
    item_bytes: int  # device-layout bytes per item (the contract)
    to_core: bool    # shim -> core (input) or core -> shim (output)
    arg: int         # runtime-sequence argument index = data BO i
    bd_id: int


@dataclass(frozen=True)
class Design:
    kernel: str
    func: str
    obj: str
    fifos: tuple  # in runtime-sequence issue order: outputs first
    # The parameters of the extern "C" entry in the AIE source, as MLIR
    # types, in order: the func.func declaration. Written out, not derived
    # from the fifos, because it is a contract with the C++ prototype
    # (check_mlir.py compares the two) that the core's func.call must meet
    # (mlir-opt verifies that).
    kernel_args: tuple
    # Bytes reserved for the core's stack. Each design sets it from the
    # measured frame sizes of its entry's call tree plus a margin;
    # kernels/tools/stack_sizes.py checks it (ctest npuk_design_stacks).
    stack_size: int
    depth: int = 2


def fifo_bytes(d: Design) -> int:
    """Object-FIFO buffers on the core tile: depth items per fifo (only the
    core end of a shim <-> core fifo has tile buffers)."""
    return sum(f.item_bytes * d.depth for f in d.fifos)


def tile_bytes(d: Design) -> int:
    """Stack plus FIFO buffers; the kernel's static data comes on top
    (stack_sizes.py adds it from the compiled object)."""
    return fifo_bytes(d) + d.stack_size


def memref(f: Fifo) -> str:
    return f"memref<{f.count}x{f.elem}>"


def _syntax(mode: str) -> Syntax:
    if mode not in MODES:
        raise ValueError(f"unknown design mode {mode!r}; one of "
                         f"{', '.join(MODES)}")
    return MODES[mode]


def _check(d: Design, n: int) -> None:
    if n < 1:
        raise ValueError(f"{d.kernel}: batch size {n} < 1")
    if tile_bytes(d) > TILE_MEMORY_BYTES:
        raise ValueError(f"{d.kernel}: stack {d.stack_size} B + FIFO buffers "
                         f"{fifo_bytes(d)} B exceed the "
                         f"{TILE_MEMORY_BYTES} B tile")


def _core_lines(core_body: str):
    return [line.strip() for line in core_body.split("\n") if line.strip()]


def emit(d: Design, n: int, core_body: str, mode: str = DEFAULT_MODE) -> str:
    """The whole module for batch size n. core_body: custom-form lines that
    use the %<fifo> views (and %c0, %c1)."""
    syn = _syntax(mode)
    _check(d, n)
    func_args = ", ".join(d.kernel_args)
    link = (f' attributes {{link_with = "{d.obj}"}}'
            if syn.func_link_with else "")
    out = [
        f"// {d.kernel} on npu1_1col, runtime sequence for N={n}, "
        f"mode {mode} ({syn.era}).",
        f"// Generated by kernels/{d.kernel}/{d.kernel}_design.py; do not edit.",
        "module {",
        "  aie.device(npu1_1col) {",
        f"    func.func private @{d.func}({func_args}){link}",
        "    %shim = aie.tile(0, 0)",
        "    %core = aie.tile(0, 2)",
    ]
    for f in d.fifos:
        ends = "%shim, {%core}" if f.to_core else "%core, {%shim}"
        out.append(f"    aie.objectfifo @{f.name}({ends}, {d.depth} : i32) : "
                   f"!aie.objectfifo<{memref(f)}>")
    out += [
        "    %c = aie.core(%core) {",
        "      %c0 = arith.constant 0 : index",
        "      %c1 = arith.constant 1 : index",
        "      %cmax = arith.constant 9223372036854775807 : index",
        "      // Loop forever: N is set by the runtime sequence alone.",
        "      scf.for %i = %c0 to %cmax step %c1 {",
    ]
    for f in d.fifos:
        port = "Consume" if f.to_core else "Produce"
        view = f"!aie.objectfifosubview<{memref(f)}>"
        out.append(f"        %s_{f.name} = aie.objectfifo.acquire @{f.name}"
                   f"({port}, 1) : {view}")
        out.append(f"        %{f.name} = aie.objectfifo.subview.access "
                   f"%s_{f.name}[0] : {view} -> {memref(f)}")
    out += ["        " + line for line in _core_lines(core_body)]
    for f in d.fifos:
        port = "Consume" if f.to_core else "Produce"
        out.append(f"        aie.objectfifo.release @{f.name}({port}, 1)")
    attrs = f"stack_size = {d.stack_size} : i32"
    if not syn.func_link_with:
        attrs = f'link_with = "{d.obj}", ' + attrs
    out += ["      }", "      aie.end", f"    }} {{{attrs}}}"]

    args = sorted(d.fifos, key=lambda f: f.arg)
    params = ", ".join(f"%{f.name}_ddr: memref<{n * f.item_bytes // 4}xi32>"
                       for f in args)
    out.append(f"    {syn.sequence_op} @seq_n{n}({params}) {{")
    for f in d.fifos:
        words = n * f.item_bytes // 4
        token = ", issue_token = true" if not f.to_core else ""
        xy = "0, 0, " if syn.memcpy_xy else ""
        out.append(
            f"      aiex.npu.dma_memcpy_nd({xy}%{f.name}_ddr[0, 0, 0, 0]"
            f"[1, 1, 1, {words}][0, 0, 0, 1]) {{id = {f.bd_id} : i64, "
            f"metadata = @{f.name}{token}}} : memref<{words}xi32>")
    for f in d.fifos:
        if not f.to_core:
            out.append(f"      aiex.npu.dma_wait {{symbol = @{f.name}}}")
    out += ["    }", "  }", "}", ""]
    return "\n".join(out)


# The core-body lines emit_check() can translate: the only ops our designs'
# cores use besides the fifo accesses emit() writes itself.
_LOAD_RE = re.compile(r"%([\w$.]+)\s*=\s*memref\.load\s+%([\w$.]+)\s*"
                      r"\[([^\]]*)\]\s*:\s*(memref<[\dx]+x(\w+)>)$")
_CALL_RE = re.compile(r"func\.call\s+@([\w$.]+)\s*\(([^)]*)\)\s*:\s*"
                      r"\(([^)]*)\)\s*->\s*\(\s*\)$")


def _split_types(text: str):
    """'memref<2xi32>, i32' -> ['memref<2xi32>', 'i32'] (no nested commas in
    the types our designs use)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _generic_core_line(line: str) -> str:
    m = _LOAD_RE.match(line)
    if m:
        res, mem, idx, mtype, elem = m.groups()
        idxs = [i.strip() for i in idx.split(",") if i.strip()]
        operands = ", ".join([f"%{mem}"] + idxs)
        types = ", ".join([mtype] + ["index"] * len(idxs))
        return f'%{res} = "memref.load"({operands}) : ({types}) -> {elem}'
    m = _CALL_RE.match(line)
    if m:
        callee, operands, types = m.groups()
        return (f'"func.call"({operands.strip()}) <{{callee = @{callee}}}> : '
                f"({', '.join(_split_types(types))}) -> ()")
    raise ValueError(
        f"core line {line!r}: emit_check() translates only memref.load and "
        "func.call; extend kernels/tools/txn_design/aie_design.py "
        "(_generic_core_line) for a new op")


def emit_check(d: Design, n: int, core_body: str,
               mode: str = DEFAULT_MODE) -> str:
    """The module of emit() in generic op form, for `mlir-opt
    --allow-unregistered-dialect` (mlir-19-tools) to parse and verify.

    A stock MLIR does not know the aie dialects, and it resolves a symbol
    only up to the nearest *registered* symbol table: a func.call inside an
    unregistered aie.core inside an unregistered aie.device finds nothing
    (MLIR treats an unknown one-region op as a possible symbol table). So
    the three region ops become registered ones with the same contents:
      aie.device            -> a nested builtin.module (a symbol table);
      aie.core(%core)       -> func.func @core_<col>_<row>() with the core's
                               body (the loop, the fifo accesses, the call);
      <era>.runtime_sequence -> func.func @seq_n<N>(<the DDR memrefs>).
    Everything else is printed as it is, as unregistered generic ops, so
    mlir-opt verifies: the func.call against the func.func declaration
    (arity and types), memref.load, arith.constant and scf.for, that every
    SSA value is used with the type it was defined with (each fifo view, each
    DDR argument), and that symbol names (fifos, functions) are unique.
    What it cannot see (aie op semantics, which fifo a transfer names, byte
    counts, BD ids, the C++ prototype, stack and tile memory) is left to
    check_mlir.py's structural checks, lint_sequences.py and stack_sizes.py.
    """
    syn = _syntax(mode)
    _check(d, n)
    fn_type = f"({', '.join(d.kernel_args)}) -> ()"
    decl_attrs = f' {{link_with = "{d.obj}"}}' if syn.func_link_with else ""
    out = [
        f"// {d.kernel} N={n} mode {mode}: the check form of "
        f"kernels/{d.kernel}/{d.kernel}_design.py (aie_design.emit_check).",
        '"builtin.module"() ({',
        '  "builtin.module"() ({',
        f'    "func.func"() <{{function_type = {fn_type}, sym_name = '
        f'"{d.func}", sym_visibility = "private"}}> ({{\n    }}){decl_attrs}'
        " : () -> ()",
        '    %shim = "aie.tile"() {col = 0 : i32, row = 0 : i32} : () -> index',
        '    %core = "aie.tile"() {col = 0 : i32, row = 2 : i32} : () -> index',
    ]
    for f in d.fifos:
        ends = "%shim, %core" if f.to_core else "%core, %shim"
        out.append(f'    "aie.objectfifo"({ends}) {{sym_name = "{f.name}", '
                   f"elemNumber = {d.depth} : i32, elemType = "
                   f"!aie.objectfifo<{memref(f)}>}} : (index, index) -> ()")
    core_attrs = f"stack_size = {d.stack_size} : i32"
    if not syn.func_link_with:
        core_attrs = f'link_with = "{d.obj}", ' + core_attrs
    out += [
        '    "func.func"() <{function_type = () -> (), sym_name = '
        '"core_0_2"}> ({',
        '      %c0 = "arith.constant"() <{value = 0 : index}> : () -> index',
        '      %c1 = "arith.constant"() <{value = 1 : index}> : () -> index',
        '      %cmax = "arith.constant"() <{value = 9223372036854775807 : '
        'index}> : () -> index',
        '      "scf.for"(%c0, %cmax, %c1) ({',
        "      ^bb0(%i: index):",
    ]
    for f in d.fifos:
        port = 1 if f.to_core else 0  # ObjectFifoPort: Produce 0, Consume 1
        view = f"!aie.objectfifosubview<{memref(f)}>"
        out.append(f'        %s_{f.name} = "aie.objectfifo.acquire"() '
                   f"{{objFifo_name = @{f.name}, port = {port} : i32, "
                   f"size = 1 : i32}} : () -> {view}")
        out.append(f'        %{f.name} = "aie.objectfifo.subview.access"'
                   f"(%s_{f.name}) {{index = 0 : i32}} : ({view}) -> "
                   f"{memref(f)}")
    out += ["        " + _generic_core_line(line)
            for line in _core_lines(core_body)]
    for f in d.fifos:
        port = 1 if f.to_core else 0
        out.append(f'        "aie.objectfifo.release"() {{objFifo_name = '
                   f"@{f.name}, port = {port} : i32, size = 1 : i32}} : "
                   "() -> ()")
    out += [
        '        "scf.yield"() : () -> ()',
        "      }) : (index, index, index) -> ()",
        '      "func.return"() : () -> ()',
        f'    }}) {{aie.core = [0 : i32, 2 : i32], {core_attrs}}} : () -> ()',
    ]
    args = sorted(d.fifos, key=lambda f: f.arg)
    ddr = {f.name: f"memref<{n * f.item_bytes // 4}xi32>" for f in args}
    seq_type = f"({', '.join(ddr[f.name] for f in args)}) -> ()"
    block_args = ", ".join(f"%{f.name}_ddr: {ddr[f.name]}" for f in args)
    out += [
        f'    "func.func"() <{{function_type = {seq_type}, sym_name = '
        f'"seq_n{n}"}}> ({{',
        f"    ^bb0({block_args}):",
    ]
    for f in d.fifos:
        words = n * f.item_bytes // 4
        attrs = [f"id = {f.bd_id} : i64", f"metadata = @{f.name}",
                 "static_offsets = array<i64: 0, 0, 0, 0>",
                 f"static_sizes = array<i64: 1, 1, 1, {words}>",
                 "static_strides = array<i64: 0, 0, 0, 1>"]
        if not f.to_core:
            attrs.append("issue_token = true")
        if syn.memcpy_xy:
            attrs += ["x = 0 : i64", "y = 0 : i64"]
        out.append(f'      "aiex.npu.dma_memcpy_nd"(%{f.name}_ddr) '
                   f"{{{', '.join(attrs)}}} : ({ddr[f.name]}) -> ()")
    for f in d.fifos:
        if not f.to_core:
            out.append(f'      "aiex.npu.dma_wait"() {{symbol = @{f.name}}} '
                       ": () -> ()")
    out += [
        '      "func.return"() : () -> ()',
        f'    }}) {{{syn.sequence_op}}} : () -> ()',
        '  }) {sym_name = "npu1_1col", aie.device = "npu1_1col"} : () -> ()',
        "}) : () -> ()",
        "",
    ]
    return "\n".join(out)


def main(design: Design, core_body: str, argv) -> None:
    import argparse
    p = argparse.ArgumentParser(description=f"Emit the {design.kernel} MLIR")
    p.add_argument("--n", type=int, required=True, help="batch size")
    p.add_argument("--mode", choices=list(MODES), default=DEFAULT_MODE,
                   help="mlir-aie era to emit for (kernels/tools/aie_era.py "
                   f"picks it; default {DEFAULT_MODE})")
    p.add_argument("--legacy", action="store_true",
                   help=f"the oldest era, same as --mode {LEGACY_MODE}")
    p.add_argument("--check-form", action="store_true",
                   help="print the generic-form check module for mlir-opt "
                   "(kernels/tools/check_mlir.py) instead")
    p.add_argument("-o", "--output", help="file (default stdout)")
    a = p.parse_args(argv)
    mode = LEGACY_MODE if a.legacy else a.mode
    printer = emit_check if a.check_form else emit
    try:
        text = printer(design, a.n, core_body, mode)
    except ValueError as e:
        p.error(str(e))
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        print(text, end="")
