"""Build the compiled twins in fast/ as extension modules under emu._fast.

Each fast/NAME.pyx becomes emu._fast.NAME, so the import names cannot collide
with other packages in site-packages. Twins that call libunicorn directly link
against the libunicorn.so.2 shipped inside the unicorn wheel, with an rpath to
that folder. A twin that fails to build is skipped with a warning: the package
then runs on the pure-Python path (see emu/core/twins.py).
"""

from __future__ import annotations

import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _unicorn_dirs() -> tuple[str, str]:
    """Return (include_dir, lib_dir) of the installed unicorn wheel."""
    import unicorn

    root = os.path.dirname(unicorn.__file__)
    return os.path.join(root, "include"), os.path.join(root, "lib")


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the pure path still works."""

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - any compiler failure degrades to pure
            sys.stderr.write(f"warning: compiled twin {ext.name} not built ({exc}); "
                             "the pure-Python path will be used\n")


def _extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write("warning: Cython missing; no compiled twins\n")
        return []
    inc, lib = _unicorn_dirs()
    exts = []
    for pyx in sorted(glob.glob("fast/*.pyx")):
        name = os.path.splitext(os.path.basename(pyx))[0]
        exts.append(Extension(
            f"emu._fast.{name}",
            [pyx],
            include_dirs=[inc],
            library_dirs=[lib],
            libraries=[":libunicorn.so.2"],
            runtime_library_dirs=[lib],
            extra_compile_args=["-O2", "-Wno-unused-function"],
        ))
    return cythonize(exts, language_level=3, quiet=True,
                     compiler_directives={"boundscheck": False, "wraparound": False})


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
