"""Tests of lint_sequences.py: every registered design passes; each broken
sequence below, a mistake from the prior attempt or mlir-aie issues, is
rejected with the rule it breaks.

The declarations come from npuk_txn_tool ($NPUK_TXN_TOOL, set by ctest
npuk_lint_sequences), so these tests check the shipped generators against
the shipped KernelSpecs."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lint_sequences  # noqa: E402


@pytest.fixture(scope="module")
def declared():
    try:
        return lint_sequences.load_designs()
    except lint_sequences.ContractError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def kernels(declared):
    return declared[0]


def design(kernel, n, mode=None, generator=None):
    script = os.path.join(HERE, "..", kernel, generator or f"{kernel}_design.py")
    cmd = [sys.executable, script, "--n", str(n)] + (["--mode", mode] if mode else [])
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def problems(kernels):
    return lambda text: "\n".join(lint_sequences.lint_text(text, kernels, "t"))


def test_every_shipped_design_passes():
    assert lint_sequences.main([]) == 0


def test_registry_has_the_shipped_kernels(kernels):
    # The declarations really came from the registry, not an empty list.
    assert {"mel", "attention", "passthrough"} <= set(kernels)


def test_every_registered_design_clean(kernels, declared, problems):
    for name, k in kernels.items():
        for mode in lint_sequences.aie_design.MODES:
            text = design(name, declared[1][-1], mode, k["generator"])
            assert problems(text) == "", (name, mode)


def test_missing_output_wait_rejected(problems):
    text = design("mel", 16).replace("aiex.npu.dma_wait {symbol = @of_out}", "")
    assert "not waited on" in problems(text)


def test_wait_on_input_only_rejected(problems):
    text = design("mel", 16).replace("dma_wait {symbol = @of_out}",
                                     "dma_wait {symbol = @of_in}")
    assert "@of_out is not waited on" in problems(text)


def test_wait_before_transfer_rejected(problems):
    text = design("mel", 4)
    lines = text.split("\n")
    wait = next(i for i, l in enumerate(lines) if "dma_wait" in l)
    first = next(i for i, l in enumerate(lines) if "dma_memcpy_nd" in l)
    lines.insert(first, lines.pop(wait))
    assert "not waited on" in problems("\n".join(lines))


def test_hand_lowered_writebd_rejected(problems):
    text = design("mel", 4).replace(
        "aiex.npu.dma_wait",
        "aiex.npu.writebd {bd_id = 1 : i32, buffer_length = 800 : i32}\n"
        "      aiex.npu.dma_wait")
    assert "hand-lowered aiex.npu.writebd" in problems(text)


def test_wrong_byte_size_rejected(problems):
    text = design("mel", 16).replace("[1, 1, 1, 3200]", "[1, 1, 1, 3201]")
    assert "not a multiple of 800" in problems(text)


def test_mixed_batch_sizes_rejected(problems):
    # The prior attempt's batch-20 xclbin with 800/80-byte host buffers.
    text = design("mel", 16).replace("[1, 1, 1, 320]", "[1, 1, 1, 20]")
    assert "different batch sizes [1, 16]" in problems(text)


def test_name_and_size_disagree_rejected(problems):
    text = design("attention", 4).replace("@seq_n4", "@seq_n16")
    assert "named for N=16 but moves N=[4]" in problems(text)


def test_swapped_arguments_rejected(problems):
    text = design("mel", 4).replace(
        "(%of_in_ddr: memref<800xi32>, %of_out_ddr: memref<80xi32>)",
        "(%of_out_ddr: memref<80xi32>, %of_in_ddr: memref<800xi32>)")
    assert "host binds it to argument" in problems(text)


def test_duplicate_bd_id_rejected(problems):
    text = design("attention", 4).replace("id = 2 : i64", "id = 1 : i64")
    assert "BD id 1 used by" in problems(text)


def test_bd_other_than_declared_rejected(problems):
    # Swapping the BDs keeps them distinct but breaks what npu-sim encodes.
    text = (design("passthrough", 4).replace("id = 0 : i64", "id = X : i64")
            .replace("id = 1 : i64", "id = 0 : i64")
            .replace("id = X : i64", "id = 1 : i64"))
    assert "@of_out uses BD 1 but the passthrough declaration says BD 0" in \
        problems(text)


def test_reversed_fifo_direction_rejected(problems):
    text = design("passthrough", 4).replace(
        "aie.objectfifo @of_in(%shim_0_0, {%mem_0_1}",
        "aie.objectfifo @of_in(%mem_0_1, {%shim_0_0}")
    assert "@of_in must run shim -> core" in problems(text)


def test_layout_other_than_declared_rejected(problems):
    # Three cores where the declaration says a column of four (R7).
    text = design("mel", 4)
    start = text.index("    %c_0_5 = aie.core(")
    end = text.index("aie.end", start)
    text = text[:start] + text[text.index("\n", text.index("}", end)) + 1:]
    assert "the design has 3 compute cores on aie.device(npu1_1col) but " \
        "the mel declaration says 4 cores x 1 columns" in problems(text)
    two = design("mel", 4).replace("aie.device(npu1_1col)",
                                   "aie.device(npu1_2col)")
    assert "(R7)" in problems(two)


def test_run_not_a_multiple_of_the_round_rejected(problems):
    text = design("mel", 4).replace("[1, 1, 1, 800]", "[1, 1, 1, 600]") \
        .replace("[1, 1, 1, 80]", "[1, 1, 1, 60]")
    assert "3 items, not a multiple of the 4 items of a round" in \
        problems(text)


def test_undeclared_fifo_rejected(problems):
    text = design("passthrough", 4).replace("@of_in", "@of_data")
    out = problems(text)
    assert "objectfifo @of_in of the passthrough declaration is not declared" \
        in out
    assert "transfer on @of_data" in out


def test_core_linking_another_object_rejected(problems):
    text = design("passthrough", 4).replace('"passthrough_kernel.o"', '"mel_kernel.o"')
    assert "the core links ['mel_kernel.o'] but the passthrough declaration's " \
        "source compiles to passthrough_kernel.o" in problems(text)


TASK_SEQ = """
    aie.runtime_sequence @seq_n4(%in: memref<800xi32>, %out: memref<80xi32>) {
      %t_out = aiex.dma_configure_task_for @of_out {
        aie.dma_bd(%out : memref<80xi32>, 0, 80) {burst_length = 0 : i32}
        aie.end
      } {issue_token = TOKEN}
      %t_in = aiex.dma_configure_task_for @of_in {
        aie.dma_bd(%in : memref<800xi32>, 0, 800) {burst_length = 0 : i32}
        aie.end
      } {}
      aiex.dma_start_task(%t_out)
      aiex.dma_start_task(%t_in)
      AWAIT
      aiex.dma_free_task(%t_in)
    }
  }
}
"""


def task_design(token, wait):
    head = design("mel", 4)
    head = head[:head.index("    aie.runtime_sequence")]
    seq = TASK_SEQ.replace("TOKEN", token).replace(
        "AWAIT", "aiex.dma_await_task(%t_out)" if wait else "")
    return head + seq


def test_task_api_with_token_passes(problems):
    assert problems(task_design("true", True)) == ""


def test_task_api_await_without_token_rejected(problems):
    assert "without issue_token" in problems(task_design("false", True))


def test_task_api_output_not_awaited_rejected(problems):
    assert "not waited on" in problems(task_design("true", False))


def test_unknown_kernel_rejected(problems):
    text = design("mel", 4).replace("func.call @mel_kernel_simple",
                                    "func.call @fft_1024")
    assert "cannot tell the kernel" in problems(text)


def test_generator_without_registration_reported(kernels, tmp_path):
    for name, k in kernels.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / k["generator"]).write_text("")
    (tmp_path / "fft").mkdir()
    (tmp_path / "fft" / "fft_design.py").write_text("")
    out = lint_sequences.generator_problems(kernels, str(tmp_path))
    assert out == [
        "fft/fft_design.py is the design of no registered kernel: add the "
        "kernel to NPUK_KERNELS in kernels/CMakeLists.txt "
        "(docs/ADDING_A_KERNEL.md) or delete it"]


def test_registered_kernel_without_generator_reported(kernels, tmp_path):
    out = lint_sequences.generator_problems(kernels, str(tmp_path))
    assert len(out) == len(kernels)
    assert all("does not exist" in line for line in out)


def test_designs_json_file_accepted(declared, tmp_path):
    tool = os.environ["NPUK_TXN_TOOL"]
    doc = subprocess.run([tool, "designs"], check=True, capture_output=True,
                         text=True).stdout
    f = tmp_path / "designs.json"
    f.write_text(doc)
    bad = tmp_path / "bad.mlir"
    bad.write_text(design("passthrough", 4).replace("aiex.npu.dma_wait", "// "))
    r = subprocess.run([sys.executable, os.path.join(HERE, "lint_sequences.py"),
                        "--designs", str(f), str(bad)],
                       capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items()
                            if k != "NPUK_TXN_TOOL"})
    assert r.returncode == 1
    assert "not waited on" in r.stdout
    # A declaration with a different size rejects the same design.
    decl = json.loads(doc)
    for k in decl["kernels"]:
        for s in k["streams"]:
            s["bytes_per_item"] += 4
    f.write_text(json.dumps(decl))
    good = tmp_path / "good.mlir"
    good.write_text(design("passthrough", 4))
    r = subprocess.run([sys.executable, os.path.join(HERE, "lint_sequences.py"),
                        "--designs", str(f), str(good)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "not a multiple of 4100 per item (R3)" in r.stdout


def test_missing_declarations_exit_2():
    env = {k: v for k, v in os.environ.items() if k != "NPUK_TXN_TOOL"}
    r = subprocess.run([sys.executable, os.path.join(HERE, "lint_sequences.py")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "NPUK_TXN_TOOL" in r.stderr


def test_cli_reports_and_fails(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text(design("mel", 4).replace("aiex.npu.dma_wait", "// "))
    r = subprocess.run([sys.executable, os.path.join(HERE, "lint_sequences.py"),
                        str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "not waited on" in r.stdout


def test_generator_sizes_match_the_cpp_side(kernels):
    assert lint_sequences.size_problems(kernels) == []
    other = {name: dict(k, batch_sizes=(1, 2)) for name, k in kernels.items()}
    out = lint_sequences.size_problems(other)
    assert len(out) == len(kernels)
    assert "the C++ side (txn::BatchSizesFor) [1, 2]" in out[0]
