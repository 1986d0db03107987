# Two commands on a fresh machine: `make run` and `make test`.
# Both create .venv, install the package with its compiled twins (fast/*.pyx)
# and build the guest with the ziglang package from PyPI.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYX := $(wildcard fast/*.pyx)
EXT_STAMP := emu/_fast/.built

.PHONY: all setup run test test-pure bench bench-compare lint guest clean docs wheel xv6 xv6-usertests linux-guest

all: setup

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=68" wheel
	$(PY) -m pip install -q cython "unicorn==2.1.4"
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]"
	# byte-code once, as pip does unless PYTHONDONTWRITEBYTECODE is set:
	# every `emu` start would compile its libraries again (~0.1 s)
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $@

$(EXT_STAMP): $(STAMP) $(PYX) setup.py
	$(PY) setup.py -q build_ext --inplace
	touch $@

guest: $(STAMP)
	$(MAKE) -s -C guest PYTHON=$(abspath $(PY))

setup: $(STAMP) $(EXT_STAMP) guest
	@$(PY) -m compileall -q emu > /dev/null

run: setup
	$(VENV)/bin/emu demo

test: setup
	$(VENV)/bin/pytest -q

# The whole suite on the pure-Python twins.
test-pure: setup
	EMU_PURE=1 $(VENV)/bin/pytest -q

# The benchmarks (pytest-benchmark), then one summary table with the ratios of
# this run (bench/summary.py): saved in bench/results/latest.json (the run the
# docs show: docs/benchmarks.md) and .benchmarks/emu/ (the history).
bench: setup
	EMU_BENCH_PUBLISH=1 $(VENV)/bin/pytest -q bench --benchmark-only --benchmark-group-by=group \
		--benchmark-autosave
	$(PY) docs/generate.py docs/benchmarks.md

# Every figure that moved more than 10% since the previous `make bench`.
bench-compare: setup
	$(VENV)/bin/python bench/summary.py compare --threshold $(or $(THRESHOLD),10)

# Regenerate the figures and transcripts in README.md and docs/ (docs/generate.py);
# tests/test_docs.py fails when a page no longer matches what this prints.
docs: setup
	$(PY) docs/generate.py

# An installable wheel in dist/ with the compiled twins and the guest kernel
# (docs/install.md); pip builds it in an isolated environment from PyPI.
wheel: $(STAMP)
	$(PY) -m pip wheel --no-deps -w dist .

lint: setup
	$(VENV)/bin/ruff check .

# xv6-riscv, unmodified, built outside its read-only source tree with Debian's
# cross compiler (docs/guests.md): build/xv6/kernel/kernel and build/xv6/fs.img.
XV6_SRC ?= ../shared/guests/xv6-riscv
xv6:
	@[ -d build/xv6 ] || { mkdir -p build && cp -r $(XV6_SRC) build/xv6; }
	$(MAKE) -s -C build/xv6 TOOLPREFIX=riscv64-linux-gnu- CPUS=1 kernel/kernel fs.img

# The Linux guest bundle (docs/linux.md): Debian trixie's riscv64 kernel and a
# busybox initramfs with the virtio, aoe and nfs modules and memhog, under
# build/linux (fetched once with mmdebstrap; .ci/run builds it before make test).
linux-guest: setup
	$(PY) guest/linux/build.py build/linux

# xv6's own test suite on emu, to ALL TESTS PASSED (.ci/run runs it after make test).
xv6-usertests: setup xv6
	EMU_XV6_USERTESTS=1 $(VENV)/bin/pytest -q tests/test_xv6.py -k usertests

clean:
	$(MAKE) -s -C guest clean
	rm -rf build dist emu/_fast/*.so emu/_fast/.built emu/_fast/not_built.json fast/*.c
