"""Skips the whole session with exit code 77 (ctest SKIPPED, reason printed)
when tritonclient's sources or its Python dependencies are absent."""

import sys

import pytest

import triton_env


def pytest_sessionstart(session):
    why = triton_env.skip_reason()
    if why:
        print("SKIPPED: " + why, file=sys.stderr)
        pytest.exit("SKIPPED: " + why, returncode=triton_env.SKIP_CODE)
    triton_env.build_tritonclient()
