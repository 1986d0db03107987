"""Build the compiled twins and the guest kernel into the package.

- Each fast/NAME.pyx becomes emu._fast.NAME, so the import names cannot
  collide with other packages in site-packages. Twins that call libunicorn
  link against the libunicorn.so.2 of the unicorn wheel in the build
  environment, but record no path into it (that environment is deleted
  after an isolated build): at run time emu/core/twins.py imports unicorn
  first, whose binding loads its libunicorn.so.2, and the dynamic linker
  gives the twin that same library by its soname. The rpath
  $ORIGIN/../../unicorn/lib (unicorn beside emu in site-packages) lets an
  installed twin be imported on its own too.
- A twin that fails to build (no C compiler, no Cython) does not fail the
  install: the build prints one warning line naming every twin that fell
  back and why, and records the reasons in emu/_fast/not_built.json, which
  `emu --version` reports; those twins run on the pure-Python path.
- A wheel (not an editable install: a checkout boots guest/build/) ships the
  guest: build_py runs guest/Makefile with the ziglang package and copies
  guest/build/kernel.elf, which embeds the user programs, to
  emu/_guest/kernel.elf (found by emu/machine/images.py). Without ziglang or
  make the wheel ships no kernel, and the build says so in one line.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
NOT_BUILT = "not_built.json"
UNICORN_RPATH = "$ORIGIN/../../unicorn/lib"


def _warn(line: str) -> None:
    """Print one warning line of the build on stderr."""
    sys.stderr.write(f"warning: {line}\n")


def _unicorn_dirs() -> tuple[str, str]:
    """Return (include_dir, lib_dir) of the installed unicorn wheel."""
    import unicorn

    root = os.path.dirname(unicorn.__file__)
    return os.path.join(root, "include"), os.path.join(root, "lib")


def _cython_missing() -> bool:
    """True when Cython cannot be imported (the twins then cannot be built)."""
    return importlib.util.find_spec("Cython") is None


def _compile_failure(exc: BaseException) -> str:
    """One line saying why compiling a twin failed: a missing compiler named
    as such, anything else by its message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, FileNotFoundError):
            return f"no C compiler: {seen.filename or seen} not found"
        seen = seen.__cause__ or seen.__context__
    return "compiling failed: " + (" ".join(str(exc).split()) or type(exc).__name__)


class OptionalBuildExt(build_ext):
    """build_ext that degrades instead of failing: a twin that does not build
    runs on the pure-Python path. After the build it prints one line naming
    every twin that fell back, and writes their reasons to
    emu/_fast/not_built.json (removed when every twin built)."""

    def run(self) -> None:
        self._failed: dict[str, str] = {}
        super().run()
        self._report()

    def build_extension(self, ext: Extension) -> None:
        twin = ext.name.rsplit(".", 1)[-1]
        if _cython_missing():
            self._failed[twin] = "Cython is not installed"
            return
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - any compiler failure degrades to pure
            self._failed[twin] = _compile_failure(exc)
            stale = self.get_ext_fullpath(ext.name)
            if os.path.exists(stale):
                os.remove(stale)      # an earlier build's twin must not ship with this one

    def _report(self) -> None:
        """Write (or remove) not_built.json beside the twins; warn once."""
        if not self.extensions:
            return
        path = os.path.join(os.path.dirname(self.get_ext_fullpath(self.extensions[0].name)),
                            NOT_BUILT)
        if not self._failed:
            if os.path.exists(path):
                os.remove(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(self._failed, f, indent=1, sort_keys=True)
        reasons = sorted(set(self._failed.values()))
        why = reasons[0] if len(reasons) == 1 else \
            "; ".join(f"{t}: {r}" for t, r in self._failed.items())
        _warn(f"compiled twins {', '.join(self._failed)} not built ({why}); "
              "emu will run them on the pure-Python path (see `emu --version`)")


class BuildPyWithGuest(build_py):
    """build_py that also builds the guest kernel (guest/Makefile, ziglang)
    and ships it as emu/_guest/kernel.elf; editable installs skip it."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        dest = os.path.join(self.build_lib, "emu", "_guest", "kernel.elf")
        if os.path.exists(dest):
            os.remove(dest)       # never ship a stale kernel from an earlier build
        problem = self._build_guest()
        if problem:
            _warn(f"guest kernel not built ({problem}); the package ships none, so "
                  "`emu run` needs -kernel FILE or EMU_KERNEL=FILE")
            return
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(HERE, "guest", "build", "kernel.elf"), dest)

    @staticmethod
    def _build_guest() -> str | None:
        """Run guest/Makefile with this Python's ziglang. Returns None when
        guest/build/kernel.elf is built, else why not (one line)."""
        if importlib.util.find_spec("ziglang") is None:
            return "the ziglang package is not installed"
        if shutil.which("make") is None:
            return "make is not installed"
        r = subprocess.run(["make", "-s", "-C", os.path.join(HERE, "guest"),
                            f"PYTHON={sys.executable}"],
                           capture_output=True, text=True, check=False)
        if r.returncode:
            last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
            return f"make -C guest failed: {last}"
        return None


def _extensions() -> list[Extension]:
    """One Extension per fast/*.pyx, linked against unicorn's libunicorn.so.2
    (cythonized here when Cython is there; OptionalBuildExt skips them when not)."""
    inc, lib = _unicorn_dirs()
    exts = [Extension(
        f"emu._fast.{os.path.splitext(os.path.basename(pyx))[0]}",
        [pyx],
        include_dirs=[inc],
        library_dirs=[lib],
        libraries=[":libunicorn.so.2"],
        runtime_library_dirs=[UNICORN_RPATH],
        extra_compile_args=["-O2", "-Wno-unused-function"],
        optional=True,          # --inplace copies only the twins that built
    ) for pyx in sorted(glob.glob("fast/*.pyx"))]
    if _cython_missing():
        return exts
    from Cython.Build import cythonize

    return cythonize(exts, language_level=3, quiet=True,
                     compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=_extensions(),
      cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithGuest})
