"""Tests of stack_sizes.py (ctest npuk_design_stacks): every design's
stack_size covers its entry's measured call tree with the margin and the
tile fits 64 KB (host proxy: clang++-14 for armv7a, not Peano); the old
attention stack (4096 B) and the other mistakes below are rejected."""

import os
import re
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import stack_sizes  # noqa: E402


@pytest.fixture(scope="module")
def tools():
    try:
        cxx = stack_sizes._tool(["clang++-14", "clang++"], "clang++")
        readobj = stack_sizes._tool(["llvm-readobj-14", "llvm-readobj"],
                                    "llvm-readobj")
    except stack_sizes.ToolMissing as e:
        pytest.fail(f"{e}: scripts/install-deps.sh installs clang-14")
    return cxx, readobj


def proxy_object(tools, design_path, tmp_path):
    d, _ = stack_sizes.check_mlir.load_design(design_path)
    src = os.path.join(os.path.dirname(design_path),
                       os.path.splitext(d.obj)[0] + ".cc")
    obj = str(tmp_path / (d.kernel + ".o"))
    stack_sizes.compile_object(tools[0], stack_sizes.PROXY_FLAGS, src, obj)
    return obj


def design_copy(tmp_path, kernel, **subst):
    """kernels/<kernel>/ copied to tmp_path with DESIGN fields replaced."""
    src = os.path.join(HERE, "..", kernel)
    work = tmp_path / kernel
    work.mkdir()
    with open(os.path.join(src, f"{kernel}_design.py")) as f:
        text = f.read()
    for field, value in subst.items():
        text, n = re.subn(rf"{field}=\d+", f"{field}={value}", text)
        assert n == 1, field
    (work / f"{kernel}_design.py").write_text(text)
    for name in os.listdir(src):
        if name.endswith("_kernel.cc"):
            with open(os.path.join(src, name)) as f:
                (work / name).write_text(f.read())
    return str(work / f"{kernel}_design.py")


def test_every_design_fits():
    assert stack_sizes.main([]) == 0


def test_old_attention_stack_rejected(tools, tmp_path):
    path = design_copy(tmp_path, "attention", stack_size=4096)
    obj = proxy_object(tools, path, tmp_path)
    row, problems = stack_sizes.measure(path, obj, tools[1],
                                        stack_sizes.PROXY_FACTOR, "proxy")
    # The frame holds the 4 KB k^T array plus three int32[64] rows.
    assert row["path_bytes"] >= 4096 + 3 * 64 * 4
    assert len(problems) == 1
    assert "stack_size = 4096 but attention_64x64's deepest call path" in \
        problems[0]


def test_call_tree_adds_callee_frames(tools, tmp_path):
    path = os.path.join(HERE, "..", "mel", "mel_design.py")
    obj = proxy_object(tools, path, tmp_path)
    row, problems = stack_sizes.measure(path, obj, tools[1],
                                        stack_sizes.PROXY_FACTOR, "proxy")
    assert problems == []
    assert len(row["path"]) >= 2  # mel_kernel_simple -> Spectrum
    assert row["path"][0][0] == "mel_kernel_simple"
    assert row["path_bytes"] == sum(b for _, b in row["path"])
    assert row["path_bytes"] > row["path"][0][1]
    assert row["data_bytes"] > 0  # the window and DFT tables live on the tile


def test_tile_budget_rejected(tools, tmp_path):
    # attention's FIFOs take 32784 B; a 33 KB stack leaves no room.
    path = design_copy(tmp_path, "attention", stack_size=33 * 1024)
    obj = proxy_object(tools, path, tmp_path)
    _, problems = stack_sizes.measure(path, obj, tools[1],
                                      stack_sizes.PROXY_FACTOR, "proxy")
    assert any("exceed the 65536 B tile data memory" in p for p in problems)


def test_recursion_rejected(tools, tmp_path):
    work = tmp_path / "rec"
    work.mkdir()
    (work / "rec_kernel.cc").write_text(textwrap.dedent("""\
        #include <cstdint>
        __attribute__((noinline)) int32_t Walk(const int8_t* p, int32_t n) {
          volatile int32_t pad[32];
          pad[0] = n;
          return n <= 0 ? p[0] : pad[0] + Walk(p + 1, n - 1);
        }
        extern "C" void rec_kernel(const int8_t* in, int8_t* out) {
          out[0] = static_cast<int8_t>(Walk(in, in[1]));
        }
        """))
    (work / "rec_design.py").write_text(textwrap.dedent("""\
        import aie_design
        DESIGN = aie_design.Design(
            kernel="rec", func="rec_kernel", obj="rec_kernel.o",
            fifos=(aie_design.Fifo("of_out", "i8", 4, 4, False, 1, 0),
                   aie_design.Fifo("of_in", "i8", 4, 4, True, 0, 1)),
            kernel_args=("memref<4xi8>", "memref<4xi8>"), stack_size=1024)
        CORE = ""
        """))
    path = str(work / "rec_design.py")
    obj = proxy_object(tools, path, tmp_path)
    with pytest.raises(ValueError, match="recursion .*Walk.*unbounded"):
        stack_sizes.measure(path, obj, tools[1], stack_sizes.PROXY_FACTOR,
                            "proxy")


def test_worst_path_takes_the_deepest_branch():
    info = {"frames": {"e": 100, "a": 50, "b": 300, "c": 10},
            "calls": {"e": {"a", "b"}, "a": {"c"}, "b": set(), "c": set()}}
    assert stack_sizes.worst_path(info, "e") == (400, ["e", "b"])
    with pytest.raises(ValueError, match="no .stack_sizes entry"):
        stack_sizes.worst_path(info, "missing")


def test_margin():
    assert stack_sizes.required_stack(0, 1.5) == 512
    assert stack_sizes.required_stack(5200, 1.5) == 8448
    assert stack_sizes.required_stack(5200, 1.0) == 5888
