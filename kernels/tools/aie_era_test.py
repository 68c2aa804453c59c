"""Tests of aie_era.py (ctest npuk_check_mlir): the mode chosen for each
mlir-aie era. CI has no mlir-aie, so aie-opt is a stand-in script that
accepts what each era's parser accepts per the upstream PRs
(txn_design/aie_design.py, MODES): it models the rules, it is not aie-opt."""

import os
import stat
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import aie_era  # noqa: E402

FAKE = textwrap.dedent("""\
    #!/usr/bin/python3
    # Stand-in aie-opt for aie_era_test.py; era from $FAKE_ERA.
    import os, re, sys
    era = os.environ["FAKE_ERA"]
    if sys.argv[1] == "--help":
        print("OVERVIEW: fake aie-opt")
        if era == "2922":
            print("  --aie-assign-core-link-files - Assign link files")
        sys.exit(0)
    text = open(sys.argv[1]).read()
    def reject(why):
        print(f"{sys.argv[1]}:1:1: error: {why}", file=sys.stderr)
        sys.exit(1)
    if era == "none":
        reject("unknown dialect")
    seq = "aie.runtime_sequence" if era in ("2708", "2922") else \\
        "aiex.runtime_sequence"
    if not re.search(r"(^|[^x])" + re.escape(seq), text) or \\
            (seq == "aie.runtime_sequence" and "aiex.runtime_sequence" in text):
        reject("custom op '" + ("aiex.runtime_sequence" if seq.startswith("aie.")
                                else "aie.runtime_sequence") + "' is unknown")
    xy = re.search(r"dma_memcpy_nd\\(\\s*0\\s*,\\s*0\\s*,", text) is not None
    if xy != (era == "1640"):
        reject("expected SSA operand" if xy else "expected integer x, y")
    core_link = re.search(r"\\}\\s*\\{[^}]*link_with", text) is not None
    func_link = re.search(r"func\\.func[^\\n]*link_with", text) is not None
    if core_link and func_link:
        reject("link_with on both the core and a func")
    sys.exit(0)
    """)


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "aie-opt"
    path.write_text(FAKE)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.parametrize("era,mode", [("1640", "xy-memcpy"),
                                      ("1971", "aiex-seq"),
                                      ("2708", "core-link"),
                                      ("2922", "func-link")])
def test_mode_per_era(fake, monkeypatch, era, mode):
    monkeypatch.setenv("FAKE_ERA", era)
    got, diags = aie_era.probe(fake)
    assert got == mode, diags


def test_func_link_needs_the_link_pass(fake, monkeypatch):
    # A 2708-era parser accepts the func-link text (func.func takes any
    # attribute); without the pass the link would be silently dropped.
    monkeypatch.setenv("FAKE_ERA", "2708")
    got, diags = aie_era.probe(fake)
    assert got == "core-link"
    assert "aie-assign-core-link-files" in diags["func-link"]


def test_cli_prints_mode(fake):
    env = dict(os.environ, FAKE_ERA="1971")
    r = subprocess.run([sys.executable, os.path.join(HERE, "aie_era.py"),
                        "--aie-opt", fake], capture_output=True, text=True,
                       env=env)
    assert (r.returncode, r.stdout) == (0, "aiex-seq\n")


def test_cli_fails_when_no_mode_accepted(fake):
    env = dict(os.environ, FAKE_ERA="none")
    r = subprocess.run([sys.executable, os.path.join(HERE, "aie_era.py"),
                        "--aie-opt", fake], capture_output=True, text=True,
                       env=env)
    assert r.returncode == 1
    assert "accepts none of our design modes" in r.stderr
    assert "unknown dialect" in r.stderr


def test_cli_without_aie_opt_exit_2(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))
    env.pop("NPUK_AIE_OPT", None)
    r = subprocess.run([sys.executable, os.path.join(HERE, "aie_era.py")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
