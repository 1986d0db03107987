"""emu as an installed package: the wheel ships the compiled twins and the
guest kernel and works from a fresh venv outside the checkout; a build
without a C compiler says which twins fell back, once, and `emu --version`
says why; without any kernel `emu run` says in one line how to get one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from emu.cli.main import main
from emu.core import twins
from emu.machine import images
from tests.conftest import REPO, need_fast

ALL_COMPILED = "compiled twins: " + ", ".join(twins.TWINS)
DEMO_LINES = ("init: demo done", "boot: all good, powering off")


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without what would point a run back at the checkout or force
    the pure path, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("EMU_PURE", "EMU_KERNEL", "PYTHONPATH", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `cmd`, failing the test with its output when it exits non-zero."""
    r = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n" \
        f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


def runpaths(so: Path) -> list[str]:
    """The DT_RUNPATH/DT_RPATH entries of a shared object."""
    with so.open("rb") as f:
        out = []
        for sec in ELFFile(f).iter_sections():
            if isinstance(sec, DynamicSection):
                for tag in sec.iter_tags():
                    if tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                        out += getattr(tag, tag.entry.d_tag[3:].lower()).split(":")
        return out


def assert_no_build_env_path(so: Path) -> None:
    """A twin may find libunicorn through $ORIGIN, never through an absolute
    path into the (deleted) environment it was built in."""
    for entry in runpaths(so):
        assert "unicorn" not in entry or entry.startswith("$ORIGIN/"), (so.name, entry)


@pytest.mark.slow
@pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: the wheel is checked once, by "
                    "make test (it builds and runs its own compiled twins)")
def test_wheel_installs_into_a_fresh_venv_and_boots(tmp_path):
    """pip wheel (isolated build) -> a new venv outside the checkout -> the
    compiled twins are active and the shipped guest boots."""
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO)],
        cwd=work)
    (wheel,) = wheels.glob("emu_vm-*.whl")
    run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    py, emu = str(venv / "bin" / "python"), str(venv / "bin" / "emu")
    run([py, "-m", "pip", "install", "-q", str(wheel)], cwd=work)

    where = run([py, "-c", "import emu; print(emu.__file__)"], cwd=work).stdout.strip()
    site = Path(where).parent
    assert site.is_relative_to(venv), where
    assert (site / "_guest" / "kernel.elf").is_file()
    for so in (site / "_fast").glob("*.so"):
        assert_no_build_env_path(so)
    # The rpath alone (no unicorn imported first) finds the installed libunicorn.
    run([py, "-c", "import emu._fast.sv39, emu._fast.budget"], cwd=work)

    r = run([emu, "--version"], cwd=work)
    assert ALL_COMPILED in r.stdout, r.stdout
    r = run([emu, "run", "-append", "init=demo", "-q"], cwd=work, timeout=120)
    for line in DEMO_LINES:
        assert line in r.stdout, r.stdout[-2000:]
    assert r.stderr == "", r.stderr


def test_in_place_twins_find_libunicorn_without_a_build_path():
    """The checkout's twins (setup.py build_ext --inplace) load through the
    chooser with no absolute rpath: unicorn's binding provides the library."""
    sos = sorted((REPO / "emu" / "_fast").glob("*.so"))
    need_fast(len(sos) == len(twins.TWINS), "the in-place compiled twins")
    for so in sos:
        assert_no_build_env_path(so)
    # twins alone: nothing else has imported unicorn (and loaded libunicorn) first.
    r = run([sys.executable, "-c", "from emu.core import twins; print(twins.describe())"],
            cwd=REPO)
    assert r.stdout.strip() == ALL_COMPILED, r.stdout


def test_build_without_a_compiler_says_so_once_and_version_says_why(tmp_path):
    """No C compiler: the build succeeds, prints one line naming every twin,
    records why, and `emu --version` of that package says which are pure."""
    no_cc = tmp_path / "no-compiler-bin"
    no_cc.mkdir()
    lib = tmp_path / "lib"
    r = run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(lib),
             "--build-temp", str(tmp_path / "tmp")], cwd=REPO, env=clean_env(PATH=str(no_cc)))
    said = [ln for ln in r.stderr.splitlines() if "not built" in ln]
    assert len(said) == 1, r.stderr
    assert all(t in said[0] for t in twins.TWINS) and "no C compiler" in said[0], said[0]
    record = json.loads((lib / "emu" / "_fast" / twins.NOT_BUILT).read_text())
    assert sorted(record) == sorted(twins.TWINS)
    assert not list((lib / "emu" / "_fast").glob("*.so"))

    # That build's package: the sources plus what build_ext left (no twin).
    site = tmp_path / "site"
    shutil.copytree(REPO / "emu", site / "emu",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", twins.NOT_BUILT))
    shutil.copy(lib / "emu" / "_fast" / twins.NOT_BUILT, site / "emu" / "_fast")
    where = run([sys.executable, "-c", "import emu; print(emu.__file__)"], cwd=site).stdout
    assert Path(where.strip()).is_relative_to(site), where
    r = run([sys.executable, "-m", "emu", "--version"], cwd=site)
    assert (f"compiled twins: none; pure-Python twins: {', '.join(twins.TWINS)} (not "
            "compiled by the build: no C compiler") in r.stdout, r.stdout


def test_no_kernel_anywhere_is_one_line_saying_how_to_get_one(tmp_path, monkeypatch, capsys):
    """An installed package without a shipped kernel, no -kernel, no EMU_KERNEL."""
    monkeypatch.delenv("EMU_KERNEL", raising=False)
    monkeypatch.setattr(images, "CHECKOUT_MARK", str(tmp_path / "not-a-checkout"))
    monkeypatch.setattr(images, "PACKAGED_KERNEL", str(tmp_path / "_guest" / "kernel.elf"))
    assert main(["run", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "no guest kernel" in err and "-kernel FILE" in err and "EMU_KERNEL=FILE" in err


def test_kernel_lookup_order(tmp_path, monkeypatch, capsys):
    """EMU_KERNEL, then the checkout's guest/build, then the packaged kernel;
    a missing one of each is one line naming the way to fix it."""
    packaged = tmp_path / "_guest" / "kernel.elf"
    monkeypatch.setattr(images, "PACKAGED_KERNEL", str(packaged))
    monkeypatch.setattr(images, "CHECKOUT_MARK", str(tmp_path / "not-a-checkout"))
    monkeypatch.delenv("EMU_KERNEL", raising=False)
    packaged.parent.mkdir()
    packaged.write_bytes(b"")
    assert images.default_kernel() == str(packaged)

    mark = tmp_path / "Makefile"
    mark.write_text("")
    monkeypatch.setattr(images, "CHECKOUT_MARK", str(mark))
    monkeypatch.setattr(images, "GUEST_BUILD", str(tmp_path / "build"))
    assert main(["run", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "make guest" in err, err
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "kernel.elf").write_bytes(b"")
    assert images.default_kernel() == str(tmp_path / "build" / "kernel.elf")

    monkeypatch.setenv("EMU_KERNEL", str(packaged))
    assert images.default_kernel() == str(packaged)
    monkeypatch.setenv("EMU_KERNEL", str(tmp_path / "nope.elf"))
    assert main(["run", "-q"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "EMU_KERNEL=" in err and "no such file" in err, err
