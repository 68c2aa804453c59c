"""Build steps pyproject.toml cannot declare: the version from the project's
top CMakeLists.txt (the single place it is written) and the gRPC stubs
npuk._proto generated from ../../proto, as the CMake build does.

Used by `pip install ./client/python`; needs protoc with grpc_python_plugin
(Debian: protobuf-compiler, protobuf-compiler-grpc) or grpc_tools
(python3-grpc-tools).
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROTO_DIR = ROOT / "proto"
PROTOS = ["grpc_service", "model_config", "health", "reflection_v1"]


def project_version() -> str:
    """The VERSION of project(npukd ...) in the top CMakeLists.txt."""
    cmake = ROOT / "CMakeLists.txt"
    text = cmake.read_text() if cmake.exists() else ""
    m = re.search(r"project\(\s*npukd\s+VERSION\s+([0-9][0-9.]*)", text)
    if m is None:
        raise RuntimeError(
            f"no project(npukd VERSION x.y.z) in {cmake}: build the package "
            "from the npukd source tree (pip install ./client/python)")
    return m.group(1)


def protoc_command() -> list:
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc and plugin:
        return [protoc, f"--plugin=protoc-gen-grpc_python={plugin}"]
    try:
        import grpc_tools.protoc  # noqa: F401
    except ImportError as e:
        raise RuntimeError(
            "generating the gRPC stubs needs protoc and grpc_python_plugin "
            "(apt-get install protobuf-compiler protobuf-compiler-grpc) or "
            "grpc_tools (apt-get install python3-grpc-tools)") from e
    return [sys.executable, "-m", "grpc_tools.protoc"]


class BuildWithStubs(build_py):
    """build_py plus npuk/_version.py and npuk/_proto/*_pb2*.py."""

    def run(self) -> None:
        super().run()
        out = pathlib.Path(self.build_lib) / "npuk"
        (out / "_version.py").write_text(
            "# Generated from the project version (top CMakeLists.txt).\n"
            f'__version__ = "{project_version()}"\n')
        stubs = out / "_proto"
        stubs.mkdir(parents=True, exist_ok=True)
        files = [str(PROTO_DIR / f"{p}.proto") for p in PROTOS]
        subprocess.run(
            protoc_command() + [f"-I{PROTO_DIR}", f"--python_out={stubs}",
                                f"--grpc_python_out={stubs}"] + files,
            check=True)
        # protoc writes `import x_pb2`; inside a package it must be relative.
        for f in stubs.glob("*_pb2*.py"):
            text = re.sub(r"(?m)^import (\w+_pb2) as", r"from . import \1 as",
                          f.read_text())
            f.write_text(text)
        (stubs / "__init__.py").write_text(
            "# Generated gRPC stubs; see client/python.\n")


os.chdir(HERE)
setup(version=project_version(), cmdclass={"build_py": BuildWithStubs})
