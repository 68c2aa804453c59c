"""Tests of check_mlir.py (ctest npuk_check_mlir): every shipped design
passes for every batch size and era; the attention design as it was before
the arity fix, and each other mistake below, is rejected by mlir-opt or by
the structural check meant for it."""

import dataclasses
import os
import re
import shutil
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_mlir  # noqa: E402
from check_mlir import aie_design  # noqa: E402

# The declaration the old emitter derived for attention (every to-core fifo,
# then the output, then the extra i32s): five parameters for a call with four.
OLD_ATTENTION_ARGS = ("memref<12288xi8>", "memref<2xi32>", "memref<4096xi8>",
                      "i32", "i32")


@pytest.fixture(scope="module")
def mlir_opt():
    try:
        return check_mlir.find_mlir_opt()
    except check_mlir.ToolMissing as e:
        pytest.fail(str(e))


def load(kernel):
    return check_mlir.load_design(
        os.path.join(HERE, "..", kernel, f"{kernel}_design.py"))


def structural(design, core, mode="func-link", kernel=None):
    return check_mlir.structural_problems(
        design, core, aie_design.emit(design, 4, core, mode),
        aie_design.emit_check(design, 4, core, mode), mode, "t",
        os.path.join(HERE, "..", kernel or design.kernel))


def test_every_design_every_batch_size_every_mode_passes():
    assert check_mlir.main([]) == 0


def test_every_registered_generator_is_checked():
    names = {os.path.basename(os.path.dirname(f))
             for f in check_mlir.design_files()}
    assert {"mel", "attention", "passthrough", "mel128"} <= names


def test_old_attention_arity_rejected_by_mlir_opt(mlir_opt):
    d, core = load("attention")
    old = dataclasses.replace(d, kernel_args=OLD_ATTENTION_ARGS)
    for mode in aie_design.MODES:
        diag = check_mlir.run_mlir_opt(
            mlir_opt, aie_design.emit_check(old, 16, core, mode))
        assert "incorrect number of operands for callee" in diag, mode
    found = "\n".join(structural(old, core))
    assert "declared with 5 parameters" in found
    assert "passes 4 operands" in found


def test_cli_fails_on_old_attention_design(tmp_path, capsys):
    src = os.path.join(HERE, "..", "attention")
    work = tmp_path / "attention"
    work.mkdir()
    with open(os.path.join(src, "attention_design.py")) as f:
        text = f.read()
    text = re.sub(r"kernel_args=\([^)]*\)",
                  "kernel_args=" + repr(OLD_ATTENTION_ARGS), text)
    (work / "attention_design.py").write_text(text)
    shutil.copy(os.path.join(src, "attention_kernel.cc"), work)
    assert check_mlir.main(["--n", "16", str(work / "attention_design.py")]) == 1
    out = capsys.readouterr().out
    assert "mlir-opt rejects the check form" in out
    assert "incorrect number of operands for callee" in out


def test_call_operand_type_mismatch_rejected(mlir_opt):
    d, core = load("attention")
    bad = core.replace("i32, i32) -> ()", "i32, i16) -> ()")
    diag = check_mlir.run_mlir_opt(mlir_opt, aie_design.emit_check(d, 4, bad))
    assert diag != ""
    assert "passes 4 operands of types" in "\n".join(structural(d, bad))


def test_view_used_with_another_type_rejected(mlir_opt):
    d, core = load("attention")
    bad = core.replace("%of_params[%c0] : memref<2xi32>",
                       "%of_params[%c0] : memref<4xi32>")
    diag = check_mlir.run_mlir_opt(mlir_opt, aie_design.emit_check(d, 4, bad))
    assert "different type" in diag


def test_undeclared_callee_rejected(mlir_opt):
    d, core = load("mel")
    bad = core.replace("@mel_kernel_simple", "@mel_kernel_fast")
    diag = check_mlir.run_mlir_opt(mlir_opt, aie_design.emit_check(d, 4, bad))
    assert "does not reference a valid function" in diag
    assert "not the design's entry" in "\n".join(structural(d, bad))


def test_declaration_against_cpp_prototype(mlir_opt):
    # Consistent MLIR (mlir-opt is content) that does not match the C++.
    d, core = load("mel")
    wrong = dataclasses.replace(
        d, kernel_args=("memref<800xi8>", "memref<80xi8>"),
        fifos=(d.fifos[0], dataclasses.replace(d.fifos[1], elem="i8",
                                               count=800)))
    bad = core.replace("memref<400xi16>", "memref<800xi8>")
    assert check_mlir.run_mlir_opt(
        mlir_opt, aie_design.emit_check(wrong, 4, bad)) == ""
    assert "8-bit elements) but mel/mel_kernel.cc has `const int16_t* in`" in \
        "\n".join(structural(wrong, bad))


def test_output_passed_to_const_pointer_rejected():
    d, core = load("passthrough")
    bad = core.replace("(%of_in, %of_out)", "(%of_out, %of_in)")
    assert "output view %of_out is passed as parameter 0" in \
        "\n".join(structural(d, bad))


def test_tile_memref_against_item_bytes():
    d, core = load("passthrough")
    bad = dataclasses.replace(d, fifos=(
        dataclasses.replace(d.fifos[0], item_bytes=2048), d.fifos[1]))
    assert "4096xi8> on the tile but 2048 B per item" in \
        "\n".join(structural(bad, core))


def test_era_syntax_checked():
    d, core = load("mel")
    found = check_mlir.structural_problems(
        d, core, aie_design.emit(d, 4, core, "xy-memcpy"),
        aie_design.emit_check(d, 4, core, "xy-memcpy"), "func-link", "t",
        os.path.join(HERE, "..", "mel"))
    text = "\n".join(found)
    assert "needs aie.runtime_sequence" in text
    assert "forbids the x,y operands" in text
    assert "links the object on the func.func declaration only" in text


def test_modes_differ_only_as_their_eras_say():
    d, core = load("mel")
    texts = {m: aie_design.emit(d, 4, core, m) for m in aie_design.MODES}
    assert "aie.runtime_sequence @seq_n4" in texts["func-link"]
    assert 'attributes {link_with = "mel_kernel.o"}' in texts["func-link"]
    assert 'link_with = "mel_kernel.o", stack_size' in texts["core-link"]
    assert "aiex.runtime_sequence @seq_n4" in texts["aiex-seq"]
    assert "dma_memcpy_nd(0, 0, %of_out_ddr" in texts["xy-memcpy"]
    assert "dma_memcpy_nd(%of_out_ddr" in texts["aiex-seq"]


def test_check_form_refuses_unknown_core_ops():
    d, core = load("mel")
    with pytest.raises(ValueError, match="translates only"):
        aie_design.emit_check(d, 4, core + "\n%x = arith.addi %a, %b : i32\n")


def test_batch_sizes_are_the_aie_builds():
    with open(os.path.join(HERE, "..", "aie_build.cmake")) as f:
        m = re.search(r"set\(NPUK_AIE_BATCH_SIZES ([\d ]+)\)", f.read())
    assert tuple(int(x) for x in m.group(1).split()) == check_mlir.BATCH_SIZES


def test_missing_mlir_opt_exit_2():
    assert check_mlir.main(["--mlir-opt", "/nonexistent/mlir-opt"]) == 2
