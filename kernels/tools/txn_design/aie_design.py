"""Shared MLIR emitter for our column designs (kernels/*/*_design.py).

A design declares its fifos (the shim side: what the runtime sequence
moves) and its core's call; this module lays it out on `cores` compute
cores of each of `columns` columns (default one column of 4, npu1_1col):
each column's mem tile splits every round of items (one per core) to its
cores and joins their outputs (fifo_ops), and the runtime sequence for N
moves each column's N / columns items. N is a multiple of the round
(granule); batch_sizes() gives the sizes the AIE build builds.

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
    # A windowed input (KernelSpec TensorDecl::halo): item i is the window
    # of item_bytes starting stride_bytes * i into the DDR buffer, read by
    # the shim DMA as strided windows (dma_memcpy_nd sizes [1, 1, n,
    # item_bytes/4], strides [0, 0, stride_bytes/4, 1] in i32 words); the
    # buffer holds (n - 1) * stride_bytes + item_bytes. 0 = linear.
    stride_bytes: int = 0
    # A small per-item input (e.g. attention's 8 B score scale) that goes
    # shim -> every core of the column directly, one round (`cores` items)
    # per element, instead of through the mem tile: the mem tile has 6
    # MM2S channels, and splitting a second input to 4 cores would need 9.
    # Core k reads record k of the round (core_body(k) indexes it).
    broadcast: bool = False
    # Elements of each of its object FIFOs (0: the design's depth).
    depth: int = 0
    # A stepped input (KernelSpec TensorDecl::stepped): the core body takes
    # a variable number of its items per round of the other fifos, in a loop
    # of its own (acquire, use, release each), so emit() does not acquire it
    # per round; the runtime sequence moves `steps` of its items per round
    # item (emit(steps=...)).
    stepped: bool = False


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
    # Compute cores per column and columns (the column design, emit()'s
    # docstring). 1 core is the direct shim <-> core design.
    cores: int = 4
    columns: int = 1
    # Buffers of every compute core, (name, element type, count): the core
    # body names buffer x as %buf_x (each core gets its own, x_<col>_<row>).
    buffers: tuple = ()


# Phoenix (npu1): 4 usable columns of 4 compute cores (rows 2-5), a mem
# tile (row 1) and a shim tile (row 0) each.
MAX_CORES = 4
MAX_COLUMNS = 4
LARGEST_BATCH = 256


def granule(d: Design) -> int:
    """Items per round: every sequence size is a multiple of it (each mem
    tile element holds one item per core)."""
    return d.cores * d.columns


def batch_sizes(g: int = 1, largest: int = LARGEST_BATCH):
    """The sequence sizes we build for granule g, up to `largest` items:
    g * m for m in 1..15, then every multiple of 2^k in [8 * 2^k, 16 * 2^k)
    (three significant bits), so rounding any m up to the next size pads
    fewer than m / 8 rounds. server/device/xrt/run_plan.h and
    kernels/tools/txn/designs.cc (BatchSizes) use the same rule; the tests
    keep them equal."""
    rounds, m, step = [], 1, 1
    while m * g <= largest:
        rounds.append(m)
        if m >= 16 * step:
            step *= 2
        m += step if m >= 8 else 1
    if rounds[-1] * g != largest and largest % g == 0:
        rounds.append(largest // g)
    return tuple(r * g for r in rounds)


def core_items(d: Design, f: Fifo) -> int:
    """Items one core-side buffer of fifo f holds: a round for a broadcast
    input on a multi-core design, else one."""
    return d.cores if (f.broadcast and d.cores > 1) else 1


def fifo_depth(d: Design, f: Fifo) -> int:
    return f.depth or d.depth


_ELEM_BYTES = {"i8": 1, "i16": 2, "i32": 4, "i64": 8, "bf16": 2, "f32": 4}


def buffer_bytes(d: Design) -> int:
    """The core's own buffers (Design.buffers) on one compute tile."""
    return sum(_ELEM_BYTES[elem] * count for _, elem, count in d.buffers)


def fifo_bytes(d: Design) -> int:
    """Object-FIFO buffers on one compute tile: depth elements per fifo
    (only the core end has buffers on the core's tile)."""
    return sum(f.item_bytes * core_items(d, f) * fifo_depth(d, f)
               for f in d.fifos)


def mem_tile_bytes(d: Design) -> int:
    """Buffers on each mem tile: depth rounds of every split/joined fifo."""
    if d.cores == 1:
        return 0
    return sum(f.item_bytes * d.cores * fifo_depth(d, f) for f in d.fifos
               if not f.broadcast)


def tile_bytes(d: Design) -> int:
    """Stack plus FIFO buffers and the core's own buffers; the kernel's
    static data comes on top (stack_sizes.py adds it from the compiled
    object)."""
    return fifo_bytes(d) + buffer_bytes(d) + d.stack_size


MEM_TILE_BYTES = 512 * 1024


def memref(f: Fifo, items: int = 1) -> str:
    return f"memref<{f.count * items}x{f.elem}>"


def device_name(d: Design) -> str:
    return f"npu1_{d.columns}col"


def shim_fifo(d: Design, f: Fifo, c: int) -> str:
    """The fifo whose shim end the runtime sequence names for column c."""
    return f.name if d.columns == 1 else f"{f.name}_c{c}"


def core_fifo(d: Design, f: Fifo, c: int, k: int) -> str:
    """The fifo core k of column c acquires."""
    if d.cores == 1 or f.broadcast:
        return shim_fifo(d, f, c)
    return f"{f.name}_{c}_{k}"


def fifo_ops(d: Design):
    """(name, producer tile, consumer tiles, memref, depth) of every object
    FIFO and
    (sources, destinations, src offsets, dst offsets) of every link, with
    tiles as (col, row). The column design (cores > 1), per column c:
      split input   shim(c,0) -> mem(c,1), one round per element, linked
                    to mem(c,1) -> core(c,2+k) with core k's item at
                    offset k * count;
      joined output core(c,2+k) -> mem(c,1) at offset k * count, linked to
                    mem(c,1) -> shim(c,0), one round per element;
      broadcast     shim(c,0) -> every core of the column, one round per
                    element.
    Column c takes items [c n/C, (c+1) n/C) of a run (the runtime sequence
    offsets its transfers), so every size is a multiple of granule()."""
    fifos, links = [], []
    for c in range(d.columns):
        shim, mem = (c, 0), (c, 1)
        cores = [(c, 2 + k) for k in range(d.cores)]
        for f in d.fifos:
            name = shim_fifo(d, f, c)
            dep = fifo_depth(d, f)
            if d.cores == 1:
                ends = (shim, [cores[0]]) if f.to_core else (cores[0], [shim])
                fifos.append((name, ends[0], ends[1], memref(f), dep))
            elif f.broadcast:
                fifos.append((name, shim, cores, memref(f, d.cores), dep))
            else:
                parts = [core_fifo(d, f, c, k) for k in range(d.cores)]
                offsets = [k * f.count for k in range(d.cores)]
                if f.to_core:
                    fifos.append((name, shim, [mem], memref(f, d.cores), dep))
                    fifos += [(p, mem, [t], memref(f), dep)
                              for p, t in zip(parts, cores)]
                    links.append(([name], parts, [], offsets))
                else:
                    fifos += [(p, t, [mem], memref(f), dep)
                              for p, t in zip(parts, cores)]
                    fifos.append((name, mem, [shim], memref(f, d.cores), dep))
                    links.append((parts, [name], offsets, []))
    return fifos, links


def stream_items(f: Fifo, n: int, steps: int = 1) -> int:
    """Items fifo f moves in a run of n items: n, or for a stepped fifo
    `steps` per item (each round's steps x its cores)."""
    return n * steps if f.stepped else n


def column_dims(d: Design, f: Fifo, n: int, c: int):
    """(offset, sizes, strides) in i32 words of column c's dma_memcpy_nd
    for a run of n items (of a stepped fifo: its stream_items): its
    n / columns items."""
    m = n // d.columns
    step = f.stride_bytes or f.item_bytes
    sizes, strides = dma_dims(f, m)
    return c * m * step // 4, sizes, strides


def ddr_words(f: Fifo, n: int) -> int:
    """i32 words of the DDR buffer a sequence of n items binds."""
    if f.stride_bytes:
        return ((n - 1) * f.stride_bytes + f.item_bytes) // 4
    return n * f.item_bytes // 4


def dma_dims(f: Fifo, n: int):
    """(sizes, strides) of the fifo's dma_memcpy_nd for n items, in i32
    words, outermost first."""
    if f.stride_bytes:
        return ([1, 1, n, f.item_bytes // 4], [0, 0, f.stride_bytes // 4, 1])
    return ([1, 1, 1, n * f.item_bytes // 4], [0, 0, 0, 1])


def _syntax(mode: str) -> Syntax:
    if mode not in MODES:
        raise ValueError(f"unknown design mode {mode!r}; one of "
                         f"{', '.join(MODES)}")
    return MODES[mode]


def _check(d: Design, n: int) -> None:
    if n < 1:
        raise ValueError(f"{d.kernel}: batch size {n} < 1")
    if not (1 <= d.cores <= MAX_CORES and 1 <= d.columns <= MAX_COLUMNS):
        raise ValueError(f"{d.kernel}: {d.cores} cores x {d.columns} "
                         f"columns; npu1 has 1-{MAX_CORES} compute cores in "
                         f"each of 1-{MAX_COLUMNS} columns")
    if n % granule(d):
        raise ValueError(f"{d.kernel}: batch size {n} is not a multiple of "
                         f"{granule(d)} ({d.cores} cores x {d.columns} "
                         "columns take one item each per round); use one of "
                         f"{', '.join(map(str, batch_sizes(granule(d))))}")
    if mem_tile_bytes(d) > MEM_TILE_BYTES:
        raise ValueError(f"{d.kernel}: {mem_tile_bytes(d)} B of mem tile "
                         f"buffers exceed the {MEM_TILE_BYTES} B mem tile")
    if tile_bytes(d) > TILE_MEMORY_BYTES:
        raise ValueError(f"{d.kernel}: stack {d.stack_size} B + FIFO buffers "
                         f"{fifo_bytes(d)} B exceed the "
                         f"{TILE_MEMORY_BYTES} B tile")


def _core_lines(core_body, k: int = 0):
    """core_body: the lines of every core, or a function of the core's
    index in its column giving them (a broadcast input's record index)."""
    text = core_body(k) if callable(core_body) else core_body
    return [line.strip() for line in text.split("\n") if line.strip()]


def _indent(lines):
    """Body lines indented by their scf.for nesting."""
    out, depth = [], 0
    for line in lines:
        if line.startswith("}"):
            depth -= 1
        out.append("  " * depth + line)
        if line.endswith("{"):
            depth += 1
    return out


def _tile_var(t) -> str:
    col, row = t
    kind = {0: "shim", 1: "mem"}.get(row, "core")
    return f"%{kind}_{col}_{row}"


def _tiles(d: Design):
    out = []
    for c in range(d.columns):
        out += [(c, 0)] + ([(c, 1)] if d.cores > 1 else [])
        out += [(c, 2 + k) for k in range(d.cores)]
    return out


def _buffer_var(name: str, col: int, row: int) -> str:
    return f"{name}_{col}_{row}"


def _with_buffers(d: Design, lines, col: int, row: int):
    """The core body's %buf_<x> names as this core's buffers."""
    out = []
    for line in lines:
        for bname, _, _ in d.buffers:
            line = re.sub(r"%buf_" + re.escape(bname) + r"\b",
                          "%" + _buffer_var(bname, col, row), line)
        out.append(line)
    return out


def emit(d: Design, n: int, core_body, mode: str = DEFAULT_MODE,
         steps: int = 1) -> str:
    """The whole module for batch size n. core_body: custom-form lines that
    use the %<fifo> views (and %c0, %c1), or a function of the core's index
    in its column giving them. With cores > 1 every column's mem tile
    splits the inputs to its cores and joins their outputs (fifo_ops). A
    stepped fifo moves `steps` items per item of the run (stream_items)."""
    syn = _syntax(mode)
    _check(d, n)
    func_args = ", ".join(d.kernel_args)
    link = (f' attributes {{link_with = "{d.obj}"}}'
            if syn.func_link_with else "")
    out = [
        f"// {d.kernel} on {device_name(d)}: {d.cores} core(s) x "
        f"{d.columns} column(s), runtime sequence for N={n}, "
        f"mode {mode} ({syn.era}).",
        f"// Generated by kernels/{d.kernel}/{d.kernel}_design.py; do not edit.",
        "module {",
        f"  aie.device({device_name(d)}) {{",
        f"    func.func private @{d.func}({func_args}){link}",
    ]
    out += [f"    {_tile_var(t)} = aie.tile({t[0]}, {t[1]})" for t in _tiles(d)]
    fifos, links = fifo_ops(d)
    for name, prod, cons, mtype, depth in fifos:
        ends = f"{_tile_var(prod)}, {{{', '.join(map(_tile_var, cons))}}}"
        out.append(f"    aie.objectfifo @{name}({ends}, {depth} : i32) : "
                   f"!aie.objectfifo<{mtype}>")
    for c in range(d.columns):
        for k in range(d.cores):
            for bname, elem, count in d.buffers:
                var = _buffer_var(bname, c, 2 + k)
                out.append(f"    %{var} = aie.buffer({_tile_var((c, 2 + k))})"
                           f' {{sym_name = "{var}"}} : memref<{count}x{elem}>')
    for srcs, dsts, src_off, dst_off in links:
        out.append(
            f"    aie.objectfifo.link [{', '.join('@' + x for x in srcs)}] -> "
            f"[{', '.join('@' + x for x in dsts)}] "
            f"([{', '.join(map(str, src_off))}] "
            f"[{', '.join(map(str, dst_off))}])")
    attrs = f"stack_size = {d.stack_size} : i32"
    if not syn.func_link_with:
        attrs = f'link_with = "{d.obj}", ' + attrs
    for c in range(d.columns):
        for k in range(d.cores):
            tile = (c, 2 + k)
            out += [
                f"    %c_{c}_{2 + k} = aie.core({_tile_var(tile)}) {{",
                "      %c0 = arith.constant 0 : index",
                "      %c1 = arith.constant 1 : index",
                "      %cmax = arith.constant 9223372036854775807 : index",
                "      // Loop forever: N is set by the runtime sequence alone.",
                "      scf.for %i = %c0 to %cmax step %c1 {",
            ]
            for f in d.fifos:
                if f.stepped:
                    continue  # the core body's own loop takes it
                port = "Consume" if f.to_core else "Produce"
                mt = memref(f, core_items(d, f))
                view = f"!aie.objectfifosubview<{mt}>"
                name = core_fifo(d, f, c, k)
                out.append(f"        %s_{f.name} = aie.objectfifo.acquire "
                           f"@{name}({port}, 1) : {view}")
                out.append(f"        %{f.name} = aie.objectfifo.subview.access "
                           f"%s_{f.name}[0] : {view} -> {mt}")
            body = _with_buffers(d, _core_lines(core_body, k), c, 2 + k)
            out += ["        " + line for line in _indent(body)]
            for f in d.fifos:
                if f.stepped:
                    continue
                port = "Consume" if f.to_core else "Produce"
                out.append(f"        aie.objectfifo.release "
                           f"@{core_fifo(d, f, c, k)}({port}, 1)")
            out += ["      }", "      aie.end", f"    }} {{{attrs}}}"]

    args = sorted(d.fifos, key=lambda f: f.arg)
    params = ", ".join(
        f"%{f.name}_ddr: memref<{ddr_words(f, stream_items(f, n, steps))}xi32>"
        for f in args)
    out.append(f"    {syn.sequence_op} @seq_n{n}({params}) {{")
    for f in d.fifos:
        m = stream_items(f, n, steps)
        words = ddr_words(f, m)
        token = ", issue_token = true" if not f.to_core else ""
        for c in range(d.columns):
            off, sizes, strides = column_dims(d, f, m, c)
            xy = f"{c}, 0, " if syn.memcpy_xy else ""
            out.append(
                f"      aiex.npu.dma_memcpy_nd({xy}%{f.name}_ddr[0, 0, 0, {off}]"
                f"[{', '.join(map(str, sizes))}][{', '.join(map(str, strides))}])"
                f" {{id = {f.bd_id} : i64, "
                f"metadata = @{shim_fifo(d, f, c)}{token}}} : memref<{words}xi32>")
    for f in d.fifos:
        if not f.to_core:
            for c in range(d.columns):
                out.append(f"      aiex.npu.dma_wait "
                           f"{{symbol = @{shim_fifo(d, f, c)}}}")
    out += ["    }", "  }", "}", ""]
    return "\n".join(out)


# The core-body lines emit_check() can translate: the only ops our designs'
# cores use besides the fifo accesses emit() writes itself (_CONST_RE
# below).
_LOAD_RE = re.compile(r"%([\w$.]+)\s*=\s*memref\.load\s+%([\w$.]+)\s*"
                      r"\[([^\]]*)\]\s*:\s*(memref<[\dx]+x(\w+)>)$")
_CALL_RE = re.compile(r"func\.call\s+@([\w$.]+)\s*\(([^)]*)\)\s*:\s*"
                      r"\(([^)]*)\)\s*->\s*\(\s*\)$")


def _split_types(text: str):
    """'memref<2xi32>, i32' -> ['memref<2xi32>', 'i32'] (no nested commas in
    the types our designs use)."""
    return [t.strip() for t in text.split(",") if t.strip()]


_CONST_RE = re.compile(r"%([\w$.]+)\s*=\s*arith\.constant\s+(-?\d+)\s*:\s*"
                       r"(index|i32)$")


_CAST_RE = re.compile(r"%([\w$.]+)\s*=\s*arith\.index_cast\s+%([\w$.]+)\s*:"
                      r"\s*(index|i32)\s+to\s+(index|i32)$")
_FOR_RE = re.compile(r"scf\.for\s+%([\w$.]+)\s*=\s*%([\w$.]+)\s+to\s+"
                     r"%([\w$.]+)\s+step\s+%([\w$.]+)\s*\{$")
_ACQUIRE_RE = re.compile(
    r"%([\w$.]+)\s*=\s*aie\.objectfifo\.acquire\s+@([\w$.]+)\s*"
    r"\((Consume|Produce),\s*(\d+)\)\s*:\s*(!aie\.objectfifosubview<.*>)$")
_ACCESS_RE = re.compile(
    r"%([\w$.]+)\s*=\s*aie\.objectfifo\.subview\.access\s+%([\w$.]+)"
    r"\[(\d+)\]\s*:\s*(!aie\.objectfifosubview<.*>)\s*->\s*(memref<.*>)$")
_RELEASE_RE = re.compile(r"aie\.objectfifo\.release\s+@([\w$.]+)\s*"
                         r"\((Consume|Produce),\s*(\d+)\)$")


def _generic_core_lines(lines):
    """The core body in generic form, its scf.for loops as nested regions
    (a loop's `}` closes with the scf.yield the custom form implies)."""
    out, depth = [], 0
    for line in lines:
        pad = "  " * depth
        m = _FOR_RE.match(line)
        if m:
            iv, lb, ub, st = m.groups()
            out += [f'{pad}"scf.for"(%{lb}, %{ub}, %{st}) ({{',
                    f"{pad}^bb0(%{iv}: index):"]
            depth += 1
            continue
        if line == "}":
            if depth == 0:
                raise ValueError("core body: `}` without an scf.for")
            depth -= 1
            pad = "  " * depth
            out += [f'{pad}  "scf.yield"() : () -> ()',
                    f"{pad}}}) : (index, index, index) -> ()"]
            continue
        out.append(pad + _generic_core_line(line))
    if depth != 0:
        raise ValueError("core body: an scf.for is not closed")
    return out


def _generic_core_line(line: str) -> str:
    m = _CONST_RE.match(line)
    if m:
        res, value, typ = m.groups()
        return (f'%{res} = "arith.constant"() <{{value = {value} : {typ}}}> : '
                f"() -> {typ}")
    m = _LOAD_RE.match(line)
    if m:
        res, mem, idx, mtype, elem = m.groups()
        idxs = [i.strip() for i in idx.split(",") if i.strip()]
        operands = ", ".join([f"%{mem}"] + idxs)
        types = ", ".join([mtype] + ["index"] * len(idxs))
        return f'%{res} = "memref.load"({operands}) : ({types}) -> {elem}'
    m = _CAST_RE.match(line)
    if m:
        res, src, t_from, t_to = m.groups()
        return (f'%{res} = "arith.index_cast"(%{src}) : ({t_from}) -> '
                f"{t_to}")
    m = _ACQUIRE_RE.match(line)
    if m:
        res, fifo, port, size, view = m.groups()
        return (f'%{res} = "aie.objectfifo.acquire"() {{objFifo_name = '
                f"@{fifo}, port = {1 if port == 'Consume' else 0} : i32, "
                f"size = {size} : i32}} : () -> {view}")
    m = _ACCESS_RE.match(line)
    if m:
        res, sub, index, view, mt = m.groups()
        return (f'%{res} = "aie.objectfifo.subview.access"(%{sub}) '
                f"{{index = {index} : i32}} : ({view}) -> {mt}")
    m = _RELEASE_RE.match(line)
    if m:
        fifo, port, size = m.groups()
        return (f'"aie.objectfifo.release"() {{objFifo_name = @{fifo}, '
                f"port = {1 if port == 'Consume' else 0} : i32, size = "
                f"{size} : i32}} : () -> ()")
    m = _CALL_RE.match(line)
    if m:
        callee, operands, types = m.groups()
        return (f'"func.call"({operands.strip()}) <{{callee = @{callee}}}> : '
                f"({', '.join(_split_types(types))}) -> ()")
    raise ValueError(
        f"core line {line!r}: emit_check() translates only arith.constant, "
        "arith.index_cast, memref.load, scf.for, the objectfifo acquire, "
        "access and release, and func.call; extend "
        "kernels/tools/txn_design/aie_design.py "
        "(_generic_core_line) for a new op")


def emit_check(d: Design, n: int, core_body,
               mode: str = DEFAULT_MODE, steps: int = 1) -> str:
    """The module of emit() in generic op form, for `mlir-opt
    --allow-unregistered-dialect` (mlir-19-tools) to parse and verify.

    A stock MLIR does not know the aie dialects, and it resolves a symbol
    only up to the nearest *registered* symbol table: a func.call inside an
    unregistered aie.core inside an unregistered aie.device finds nothing
    (MLIR treats an unknown one-region op as a possible symbol table). So
    the region ops become registered ones with the same contents:
      aie.device            -> a nested builtin.module (a symbol table);
      aie.core(%core_c_r)   -> func.func @core_<c>_<r>() with that core's
                               body (the loop, the fifo accesses, the call),
                               one per compute core of the design;
      <era>.runtime_sequence -> func.func @seq_n<N>(<the DDR memrefs>).
    Everything else (tiles, object FIFOs, links, DMA ops) is printed as it
    is, as unregistered generic ops, so mlir-opt verifies: every core's
    func.call against the func.func declaration (arity and types),
    memref.load, arith.constant and scf.for, that every SSA value is used
    with the type it was defined with (each fifo view, each DDR argument),
    and that symbol names (fifos, functions, cores) are unique.
    What it cannot see (aie op semantics, which fifo a transfer names, byte
    counts, BD ids, link offsets, the C++ prototype, stack and tile memory,
    placement and routing) is left to check_mlir.py's structural checks,
    lint_sequences.py and stack_sizes.py, or to aiecc.
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
    ]
    for t in _tiles(d):
        out.append(f'    {_tile_var(t)} = "aie.tile"() {{col = {t[0]} : i32, '
                   f"row = {t[1]} : i32}} : () -> index")
    fifos, links = fifo_ops(d)
    for name, prod, cons, mtype, depth in fifos:
        ends = ", ".join(_tile_var(t) for t in [prod] + cons)
        out.append(f'    "aie.objectfifo"({ends}) {{sym_name = "{name}", '
                   f"elemNumber = {depth} : i32, elemType = "
                   f"!aie.objectfifo<{mtype}>}} : "
                   f"({', '.join(['index'] * (1 + len(cons)))}) -> ()")
    for srcs, dsts, src_off, dst_off in links:
        out.append(
            f'    "aie.objectfifo.link"() {{fifoIns = '
            f"[{', '.join('@' + x for x in srcs)}], fifoOuts = "
            f"[{', '.join('@' + x for x in dsts)}], src_offsets = "
            f"array<i64{': ' if src_off else ''}{', '.join(map(str, src_off))}>"
            f", dst_offsets = array<i64{': ' if dst_off else ''}"
            f"{', '.join(map(str, dst_off))}>}} : () -> ()")
    core_attrs = f"stack_size = {d.stack_size} : i32"
    if not syn.func_link_with:
        core_attrs = f'link_with = "{d.obj}", ' + core_attrs
    for c in range(d.columns):
        for k in range(d.cores):
            row = 2 + k
            out += [
                '    "func.func"() <{function_type = () -> (), sym_name = '
                f'"core_{c}_{row}"}}> ({{',
                '      %c0 = "arith.constant"() <{value = 0 : index}> : () -> index',
                '      %c1 = "arith.constant"() <{value = 1 : index}> : () -> index',
                '      %cmax = "arith.constant"() <{value = 9223372036854775807 : '
                'index}> : () -> index',
                '      "scf.for"(%c0, %cmax, %c1) ({',
                "      ^bb0(%i: index):",
            ]
            # The core's buffers (aie.buffer on its tile in the module):
            # values of unregistered ops here, as the func is isolated.
            for bname, elem, count in d.buffers:
                var = _buffer_var(bname, c, row)
                out.append(f'        %{var} = "aie.buffer"() {{sym_name = '
                           f'"{var}"}} : () -> memref<{count}x{elem}>')
            for f in d.fifos:
                if f.stepped:
                    continue
                port = 1 if f.to_core else 0  # ObjectFifoPort: Produce 0, Consume 1
                mt = memref(f, core_items(d, f))
                view = f"!aie.objectfifosubview<{mt}>"
                name = core_fifo(d, f, c, k)
                out.append(f'        %s_{f.name} = "aie.objectfifo.acquire"() '
                           f"{{objFifo_name = @{name}, port = {port} : i32, "
                           f"size = 1 : i32}} : () -> {view}")
                out.append(f'        %{f.name} = "aie.objectfifo.subview.access"'
                           f"(%s_{f.name}) {{index = 0 : i32}} : ({view}) -> "
                           f"{mt}")
            body = _with_buffers(d, _core_lines(core_body, k), c, row)
            out += ["        " + line for line in _generic_core_lines(body)]
            for f in d.fifos:
                if f.stepped:
                    continue
                port = 1 if f.to_core else 0
                out.append(f'        "aie.objectfifo.release"() {{objFifo_name = '
                           f"@{core_fifo(d, f, c, k)}, port = {port} : i32, "
                           "size = 1 : i32} : () -> ()")
            out += [
                '        "scf.yield"() : () -> ()',
                "      }) : (index, index, index) -> ()",
                '      "func.return"() : () -> ()',
                f'    }}) {{aie.core = [{c} : i32, {row} : i32], '
                f"{core_attrs}}} : () -> ()",
            ]
    args = sorted(d.fifos, key=lambda f: f.arg)
    ddr = {f.name: f"memref<{ddr_words(f, stream_items(f, n, steps))}xi32>"
           for f in args}
    seq_type = f"({', '.join(ddr[f.name] for f in args)}) -> ()"
    block_args = ", ".join(f"%{f.name}_ddr: {ddr[f.name]}" for f in args)
    out += [
        f'    "func.func"() <{{function_type = {seq_type}, sym_name = '
        f'"seq_n{n}"}}> ({{',
        f"    ^bb0({block_args}):",
    ]
    for f in d.fifos:
        for c in range(d.columns):
            off, sizes, strides = column_dims(d, f, stream_items(f, n, steps),
                                              c)
            attrs = [f"id = {f.bd_id} : i64",
                     f"metadata = @{shim_fifo(d, f, c)}",
                     f"static_offsets = array<i64: 0, 0, 0, {off}>",
                     f"static_sizes = array<i64: {', '.join(map(str, sizes))}>",
                     "static_strides = array<i64: "
                     f"{', '.join(map(str, strides))}>"]
            if not f.to_core:
                attrs.append("issue_token = true")
            if syn.memcpy_xy:
                attrs += [f"x = {c} : i64", "y = 0 : i64"]
            out.append(f'      "aiex.npu.dma_memcpy_nd"(%{f.name}_ddr) '
                       f"{{{', '.join(attrs)}}} : ({ddr[f.name]}) -> ()")
    for f in d.fifos:
        if not f.to_core:
            for c in range(d.columns):
                out.append(f'      "aiex.npu.dma_wait"() {{symbol = '
                           f"@{shim_fifo(d, f, c)}}} : () -> ()")
    out += [
        '      "func.return"() : () -> ()',
        f'    }}) {{{syn.sequence_op}}} : () -> ()',
        f'  }}) {{sym_name = "{device_name(d)}", aie.device = '
        f'"{device_name(d)}"}} : () -> ()',
        "}) : () -> ()",
        "",
    ]
    return "\n".join(out)


def main(design: Design, core_body: str, argv) -> None:
    import argparse
    p = argparse.ArgumentParser(description=f"Emit the {design.kernel} MLIR")
    p.add_argument("--n", type=int, help="batch size (a multiple of "
                   "cores x columns)")
    p.add_argument("--sizes", action="store_true",
                   help="print the batch sizes built for this design "
                   "(batch_sizes(granule)), one line, and exit")
    p.add_argument("--mode", choices=list(MODES), default=DEFAULT_MODE,
                   help="mlir-aie era to emit for (kernels/tools/aie_era.py "
                   f"picks it; default {DEFAULT_MODE})")
    p.add_argument("--legacy", action="store_true",
                   help=f"the oldest era, same as --mode {LEGACY_MODE}")
    p.add_argument("--steps", type=int, default=1,
                   help="steps per item a stepped fifo moves (the sequence "
                   "of a run whose rounds take that many; default 1)")
    p.add_argument("--check-form", action="store_true",
                   help="print the generic-form check module for mlir-opt "
                   "(kernels/tools/check_mlir.py) instead")
    p.add_argument("-o", "--output", help="file (default stdout)")
    a = p.parse_args(argv)
    if a.sizes:
        print(" ".join(map(str, batch_sizes(granule(design)))))
        return
    if a.n is None:
        p.error("--n is required (or --sizes)")
    mode = LEGACY_MODE if a.legacy else a.mode
    printer = emit_check if a.check_form else emit
    try:
        text = printer(design, a.n, core_body, mode, a.steps)
    except ValueError as e:
        p.error(str(e))
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        print(text, end="")
