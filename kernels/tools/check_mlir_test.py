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
    bad = core(0).replace("i32, i32) -> ()", "i32, i16) -> ()")
    diag = check_mlir.run_mlir_opt(mlir_opt, aie_design.emit_check(d, 4, bad))
    assert diag != ""
    assert "passes 4 operands of types" in "\n".join(structural(d, bad))


def test_view_used_with_another_type_rejected(mlir_opt):
    d, core = load("attention")
    # Core 1 reads its record as if the round were another size.
    bad = (lambda k: core(k).replace("%of_params[%r0] : memref<8xi32>",
                                     "%of_params[%r0] : memref<4xi32>"))
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


def test_aie_build_asks_each_design_for_its_sizes():
    with open(os.path.join(HERE, "..", "aie_build.cmake")) as f:
        text = f.read()
    assert "--sizes" in text and "NPUK_AIE_BATCH_SIZES" not in text
    for path in check_mlir.design_files():
        d, _ = check_mlir.load_design(path)
        sizes = aie_design.batch_sizes(aie_design.granule(d))
        assert all(n % aie_design.granule(d) == 0 for n in sizes)
        assert sizes[-1] == aie_design.LARGEST_BATCH


def test_batch_sizes_pad_less_than_an_eighth_of_rounds():
    for g in (1, 4, 8):
        sizes = aie_design.batch_sizes(g)
        for rounds in range(1, aie_design.LARGEST_BATCH // g + 1):
            fit = min(n for n in sizes if n >= rounds * g) // g
            assert 8 * (fit - rounds) <= fit, (g, rounds, fit)


def _column_parts(text):
    fifos = re.findall(r"aie\.objectfifo @(\w+)\((%\w+), \{([^}]*)\}", text)
    links = re.findall(r"aie\.objectfifo\.link \[([^\]]*)\] -> \[([^\]]*)\]"
                       r" \(\[([^\]]*)\] \[([^\]]*)\]\)", text)
    return fifos, links


def test_mel_column_design_splits_and_joins_through_the_mem_tile():
    d, core = load("mel")
    assert (d.cores, d.columns) == (4, 1)
    text = aie_design.emit(d, 8, core)
    assert "aie.device(npu1_1col)" in text
    assert len(re.findall(r"= aie\.core\(", text)) == 4
    fifos, links = _column_parts(text)
    ends = {name: (prod, cons) for name, prod, cons in fifos}
    assert ends["of_in"] == ("%shim_0_0", "%mem_0_1")
    assert ends["of_out"] == ("%mem_0_1", "%shim_0_0")
    for k in range(4):
        assert ends[f"of_in_0_{k}"] == ("%mem_0_1", f"%core_0_{2 + k}")
        assert ends[f"of_out_0_{k}"] == (f"%core_0_{2 + k}", "%mem_0_1")
    split = [x for x in links if x[0] == "@of_in"]
    join = [x for x in links if x[1] == "@of_out"]
    assert split and split[0][3] == "0, 400, 800, 1200"
    assert join and join[0][2] == "0, 80, 160, 240"
    # The mem tile element is a round of 4 items; the shim still moves N.
    assert "memref<1600xi16>" in text and "[1, 1, 1, 1600][0, 0, 0, 1]" in text


def test_attention_broadcasts_the_score_scales_and_each_core_reads_its_own():
    d, core = load("attention")
    text = aie_design.emit(d, 4, core)
    fifos, _ = _column_parts(text)
    ends = {name: (prod, cons) for name, prod, cons in fifos}
    assert ends["of_params"] == (
        "%shim_0_0", "%core_0_2, %core_0_3, %core_0_4, %core_0_5")
    for k in range(4):
        assert f"arith.constant {2 * k} : index" in core(k)
    # Mem tile channels: 5 S2MM (q|k|v in, 4 outputs) and 5 MM2S, within
    # the 6 each it has.
    assert len([1 for _, prod, cons in fifos if prod == "%mem_0_1"]) == 5
    assert len([1 for _, prod, cons in fifos if cons == "%mem_0_1"]) == 5


def test_several_columns_offset_each_columns_items(mlir_opt):
    d, core = load("mel")
    two = dataclasses.replace(d, columns=2)
    text = aie_design.emit(two, 16, core)
    assert "aie.device(npu1_2col)" in text
    assert len(re.findall(r"= aie\.core\(", text)) == 8
    # Column 1 takes items 8..15: 8 * 800 B = 1600 words in.
    assert "%of_in_ddr[0, 0, 0, 1600][1, 1, 1, 1600]" in text
    assert "metadata = @of_in_c1" in text
    assert "symbol = @of_out_c1" in text
    for mode in aie_design.MODES:
        assert check_mlir.run_mlir_opt(
            mlir_opt, aie_design.emit_check(two, 16, core, mode)) == ""


def test_batch_not_a_multiple_of_the_round_is_refused():
    d, core = load("mel")
    with pytest.raises(ValueError, match="not a multiple of 4"):
        aie_design.emit(d, 6, core)
    with pytest.raises(ValueError, match="1-4 compute cores"):
        aie_design.emit(dataclasses.replace(d, cores=5), 5, core)


def test_single_core_design_is_the_direct_one():
    d, core = load("mel")
    one = dataclasses.replace(d, cores=1)
    text = aie_design.emit(one, 1, core)
    assert "%mem_0_1" not in text and "objectfifo.link" not in text
    assert "aie.objectfifo @of_in(%shim_0_0, {%core_0_2}" in text


def test_missing_mlir_opt_exit_2():
    assert check_mlir.main(["--mlir-opt", "/nonexistent/mlir-opt"]) == 2
