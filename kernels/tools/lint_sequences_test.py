"""Tests of lint_sequences.py: every shipped design passes; each broken
sequence below, a mistake from the prior attempt or mlir-aie issues, is
rejected with the rule it breaks."""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lint_sequences  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def design(kernel, n, legacy=False):
    cmd = [sys.executable, os.path.join(HERE, "..", kernel, f"{kernel}_design.py"),
           "--n", str(n)] + (["--legacy"] if legacy else [])
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


def problems(text):
    return "\n".join(lint_sequences.lint_text(text, "t"))


def test_every_shipped_design_passes():
    assert lint_sequences.main([]) == 0


@pytest.mark.parametrize("kernel", ["mel", "attention"])
@pytest.mark.parametrize("legacy", [False, True])
def test_design_clean(kernel, legacy):
    assert problems(design(kernel, 16, legacy)) == ""


def test_missing_output_wait_rejected():
    text = design("mel", 16).replace("aiex.npu.dma_wait {symbol = @of_out}", "")
    assert "not waited on" in problems(text)


def test_wait_on_input_only_rejected():
    text = design("mel", 16).replace("dma_wait {symbol = @of_out}",
                                     "dma_wait {symbol = @of_in}")
    assert "@of_out is not waited on" in problems(text)


def test_wait_before_transfer_rejected():
    text = design("mel", 4)
    lines = text.split("\n")
    wait = next(i for i, l in enumerate(lines) if "dma_wait" in l)
    first = next(i for i, l in enumerate(lines) if "dma_memcpy_nd" in l)
    lines.insert(first, lines.pop(wait))
    assert "not waited on" in problems("\n".join(lines))


def test_hand_lowered_writebd_rejected():
    text = design("mel", 4).replace(
        "aiex.npu.dma_wait",
        "aiex.npu.writebd {bd_id = 1 : i32, buffer_length = 800 : i32}\n"
        "      aiex.npu.dma_wait")
    assert "hand-lowered aiex.npu.writebd" in problems(text)


def test_wrong_byte_size_rejected():
    text = design("mel", 16).replace("[1, 1, 1, 3200]", "[1, 1, 1, 3201]")
    assert "not a multiple of 800" in problems(text)


def test_mixed_batch_sizes_rejected():
    # The prior attempt's batch-20 xclbin with 800/80-byte host buffers.
    text = design("mel", 16).replace("[1, 1, 1, 320]", "[1, 1, 1, 20]")
    assert "different batch sizes [1, 16]" in problems(text)


def test_name_and_size_disagree_rejected():
    text = design("attention", 4).replace("@seq_n4", "@seq_n16")
    assert "named for N=16 but moves N=[4]" in problems(text)


def test_swapped_arguments_rejected():
    text = design("mel", 4).replace(
        "(%of_in_ddr: memref<800xi32>, %of_out_ddr: memref<80xi32>)",
        "(%of_out_ddr: memref<80xi32>, %of_in_ddr: memref<800xi32>)")
    assert "host binds it to argument" in problems(text)


def test_duplicate_bd_id_rejected():
    text = design("attention", 4).replace("id = 2 : i64", "id = 1 : i64")
    assert "BD id 1 used by" in problems(text)


TASK_SEQ = """
    aie.runtime_sequence @seq_n1(%in: memref<200xi32>, %out: memref<20xi32>) {
      %t_out = aiex.dma_configure_task_for @of_out {
        aie.dma_bd(%out : memref<20xi32>, 0, 20) {burst_length = 0 : i32}
        aie.end
      } {issue_token = TOKEN}
      %t_in = aiex.dma_configure_task_for @of_in {
        aie.dma_bd(%in : memref<200xi32>, 0, 200) {burst_length = 0 : i32}
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
    head = design("mel", 1)
    head = head[:head.index("    aie.runtime_sequence")]
    seq = TASK_SEQ.replace("TOKEN", token).replace(
        "AWAIT", "aiex.dma_await_task(%t_out)" if wait else "")
    return head + seq


def test_task_api_with_token_passes():
    assert problems(task_design("true", True)) == ""


def test_task_api_await_without_token_rejected():
    assert "without issue_token" in problems(task_design("false", True))


def test_task_api_output_not_awaited_rejected():
    assert "not waited on" in problems(task_design("true", False))


def test_unknown_kernel_rejected():
    text = design("mel", 1).replace("func.call @mel_kernel_simple",
                                    "func.call @passthrough")
    assert "cannot tell the kernel" in problems(text)


def test_cli_reports_and_fails(tmp_path):
    bad = tmp_path / "bad.mlir"
    bad.write_text(design("mel", 4).replace("aiex.npu.dma_wait", "// "))
    r = subprocess.run([sys.executable, os.path.join(HERE, "lint_sequences.py"),
                        str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "not waited on" in r.stdout
