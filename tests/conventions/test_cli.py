"""npukd and npukctl follow command-line conventions: --help/-h exit 0 and
list the flags, per-subcommand help, --version prints the project version,
usage errors (unknown flag, bad value, missing or unknown command) exit 2
with a message saying what was wrong and where the help is."""
import os
import subprocess

import pytest

NPUKD = os.environ.get("NPUKD", "")
NPUKCTL = os.environ.get("NPUKCTL", "")
VERSION = os.environ.get("NPUK_VERSION", "")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True,
                          timeout=60,
                          env=dict(os.environ, NPUK_TARGET="unix:/nonexistent"))


@pytest.fixture(autouse=True)
def binaries() -> None:
    assert NPUKD and NPUKCTL and VERSION, "ctest sets NPUKD, NPUKCTL, NPUK_VERSION"


@pytest.mark.parametrize("flag", ["--help", "-h", "-help"])
def test_npukd_help_lists_its_flags(flag: str) -> None:
    r = run(NPUKD, flag)
    assert r.returncode == 0, r.stderr
    assert "No flags matched" not in r.stdout + r.stderr
    for f in ("--listen=VALUE", "--backend=VALUE", "--metrics=VALUE",
              "--drain_timeout=VALUE", "--config=VALUE", "--log_level=VALUE"):
        assert f in r.stdout, (f, r.stdout)
    assert "usage: npukd" in r.stdout
    # Only the daemon's flags, not absl's or the libraries'.
    assert "--flagfile" not in r.stdout


def test_npukd_help_wins_over_other_flags() -> None:
    r = run(NPUKD, "--backend=nosuch", "--help")
    assert r.returncode == 0 and "--listen" in r.stdout, r.stderr


def test_npukd_version() -> None:
    r = run(NPUKD, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"npukd {VERSION}\n"


def test_npukd_unknown_flag_is_a_usage_error() -> None:
    r = run(NPUKD, "--lisen=unix:/tmp/x.sock")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown flag '--lisen=unix:/tmp/x.sock'" in r.stderr
    assert "npukd --help" in r.stderr


def test_npukd_bad_value_is_a_usage_error() -> None:
    r = run(NPUKD, "--drain_timeout=soon")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "bad value 'soon' for --drain_timeout" in r.stderr


def test_npukd_quotes_a_bounded_prefix_of_a_long_flag() -> None:
    r = run(NPUKD, "--" + "x" * 5000)
    assert r.returncode == 2
    assert len(r.stderr) < 300, r.stderr


def test_npukd_hyphenated_flags_still_parse() -> None:
    r = run(NPUKD, "--drain-timeout=1s", "--help")
    assert r.returncode == 0


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_npukctl_help(flag: str) -> None:
    r = run(NPUKCTL, flag)
    assert r.returncode == 0, r.stderr
    for text in ("usage: npukctl", "models", "infer", "health", "stats",
                 "bench", "--target=VALUE", "--concurrency=VALUE"):
        assert text in r.stdout, (text, r.stdout)


@pytest.mark.parametrize("command,has,lacks", [
    ("infer", ["usage: npukctl infer", "--model=VALUE", "--input=VALUE",
               "--wav=VALUE", "--target=VALUE"], ["--concurrency"]),
    ("bench", ["usage: npukctl bench", "--concurrency=VALUE",
               "--duration=VALUE"], ["--wav"]),
    ("health", ["usage: npukctl health", "--[no]deep"], ["--concurrency"]),
    ("models", ["usage: npukctl models", "--[no]json"], ["--deep"]),
    ("stats", ["usage: npukctl stats", "--model=VALUE"], ["--deep"]),
])
def test_npukctl_subcommand_help(command: str, has: list, lacks: list) -> None:
    for args in ([command, "--help"], [command, "-h"], ["--help", command]):
        r = run(NPUKCTL, *args)
        assert r.returncode == 0, (args, r.stderr)
        for text in has:
            assert text in r.stdout, (args, text, r.stdout)
        for text in lacks:
            assert text not in r.stdout, (args, text, r.stdout)


def test_npukctl_version() -> None:
    r = run(NPUKCTL, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"npukctl {VERSION}\n"


def test_npukctl_unknown_flag_is_a_usage_error() -> None:
    r = run(NPUKCTL, "infer", "--modle=mel")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown flag '--modle=mel'" in r.stderr
    assert "npukctl --help" in r.stderr


def test_npukctl_bad_value_is_a_usage_error() -> None:
    r = run(NPUKCTL, "bench", "--concurrency=many")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "bad value 'many' for --concurrency" in r.stderr


def test_npukctl_missing_value_is_a_usage_error() -> None:
    r = run(NPUKCTL, "infer", "--model")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "needs a value" in r.stderr


def test_npukctl_without_a_command_is_a_usage_error() -> None:
    r = run(NPUKCTL)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "no command given" in r.stderr and "models, infer" in r.stderr


def test_npukctl_unknown_command_is_a_usage_error() -> None:
    r = run(NPUKCTL, "infre")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "unknown command 'infre'" in r.stderr


def test_npukctl_boolean_flags_parse() -> None:
    # --nojson / --json=false are valid; they fail later only because no
    # daemon listens on NPUK_TARGET (exit 2, unreachable), not as usage.
    for args in (["health", "--nojson"], ["health", "--json=false"]):
        r = run(NPUKCTL, *args)
        assert "unknown flag" not in r.stderr and "bad value" not in r.stderr
