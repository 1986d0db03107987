"""Benchmarks: run with `make bench` (pytest-benchmark, --benchmark-only)."""

from tests.conftest import asm, assemble, kernel  # noqa: F401  (shared fixtures)
