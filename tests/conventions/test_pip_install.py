"""`pip install ./client/python` as a user does it, offline, in a fresh venv
that sees Debian's grpcio and numpy (--system-site-packages), then
`import npuk` and one request against a real npukd. Two ways, both offline:
--no-build-isolation (uses Debian's python3-setuptools/python3-wheel), and
an isolated build that takes setuptools and wheel from Debian's wheel
directory /usr/share/python-wheels (python3-setuptools-whl,
python3-wheel-whl; skipped, with the reason, when they are missing)."""
import glob
import os
import shutil
import subprocess

import numpy as np
import pytest

import daemon

SOURCE = os.environ.get("NPUK_PYTHON_SOURCE", "")
VERSION = os.environ.get("NPUK_VERSION", "")
WHEELS = "/usr/share/python-wheels"

CHECK = r"""
import sys, numpy as np, npuk
assert npuk.__file__.startswith(sys.prefix), npuk.__file__
import importlib.resources
assert importlib.resources.files("npuk").joinpath("py.typed").is_file()
print(npuk.__version__)
with npuk.Client(sys.argv[1]) as c:
    names = [m["name"] for m in c.models()]
    assert "passthrough" in names, names
    x = np.arange(2 * 4096, dtype=np.int8).reshape(2, 4096)
    out = c.infer("passthrough", {"in": x})
    assert np.array_equal(next(iter(out.values())), x)
print("request ok")
"""


def install(tmp_path, *pip_args: str) -> str:
    """A fresh venv with npuk installed from a copy of the source tree (pip
    builds in the tree it is given; the copy keeps the checkout clean).
    Returns the venv's python."""
    assert SOURCE, "ctest sets NPUK_PYTHON_SOURCE to the source tree root"
    # What setup.py reads: the top CMakeLists.txt (version), proto/ (stubs)
    # and the package itself.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    (src / "client").mkdir(parents=True)
    shutil.copy(os.path.join(SOURCE, "CMakeLists.txt"), src)
    shutil.copytree(os.path.join(SOURCE, "proto"), src / "proto")
    shutil.copytree(os.path.join(SOURCE, "client", "python"),
                    src / "client" / "python", ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages",
                    str(venv)], check=True, timeout=120)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the build-tree package must not be seen
    env["PIP_NO_INDEX"] = "1"    # offline: never reach for PyPI
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index",
                        *pip_args, str(src / "client" / "python")],
                       capture_output=True, text=True, timeout=600, env=env)
    print(r.stdout[-3000:], r.stderr[-3000:])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return str(venv / "bin" / "python")


@pytest.fixture(scope="module")
def target():
    with daemon.running() as d:
        yield d.target


def check(python: str, target: str) -> None:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run([python, "-c", CHECK, target], capture_output=True,
                       text=True, timeout=120, env=env, cwd="/")
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [VERSION, "request", "ok"]


def test_pip_install_no_build_isolation(tmp_path, target) -> None:
    check(install(tmp_path, "--no-build-isolation"), target)


def test_pip_install_isolated_from_debian_wheels(tmp_path, target) -> None:
    have = [glob.glob(f"{WHEELS}/{n}-*.whl") for n in ("setuptools", "wheel")]
    if not all(have):
        pytest.skip(f"no setuptools and wheel wheels in {WHEELS}: apt-get "
                    "install python3-setuptools-whl python3-wheel-whl")
    check(install(tmp_path, "--find-links", WHEELS), target)
