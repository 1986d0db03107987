"""Which twin runs: the compiled one from emu._fast or the pure-Python one.
The one chooser every twin goes through.

Each hot path has a readable reference in its own package and a Cython twin
in fast/NAME.pyx, built as emu._fast.NAME with the same names. A caller asks
for an implementation - "python", "fast" or "auto" - with `pick(name, impl)`:
"fast" insists (TwinUnavailable, one line, when it is not there), "auto"
takes the compiled twin when it is built, and "python" never looks.
`EMU_PURE=1` forces the pure path everywhere. When "auto" first falls back,
one warning line on stderr names every twin that is unavailable and why.
`describe()` says which are active and why the others are not (shown by
`emu --version`); the reasons come from the import error, or from
emu/_fast/not_built.json, where the build (setup.py) records twins it could
not compile.

The twins record libunicorn.so.2 by its soname only (no path into a build
environment): before importing one, the chooser imports unicorn, whose
binding loads its libunicorn.so.2, and the dynamic linker resolves the
twin's libunicorn.so.2 to that loaded object - one library shared by the
binding and the twins, in a checkout and in site-packages alike.

Layer: core (imports nothing from emu but the compiled twins).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from importlib import resources
from types import ModuleType

TWINS = ("budget", "sv39", "frames", "traps", "clock", "link", "segment", "nic", "plic",
         "aoe_target")
NOT_BUILT = "not_built.json"
_warned = False


class TwinUnavailable(ImportError):
    """A compiled twin was insisted on and is not there (or EMU_PURE=1)."""


def pure_forced() -> bool:
    """Return True when EMU_PURE=1 asks for the pure-Python path."""
    return os.environ.get("EMU_PURE", "") not in ("", "0")


def not_built() -> dict[str, str]:
    """Twin name -> why the build could not compile it, as the build recorded
    in emu/_fast/not_built.json; empty when every twin built (or no record)."""
    try:
        text = resources.files("emu._fast").joinpath(NOT_BUILT).read_text()
        record = json.loads(text)
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in record.items()} if isinstance(record, dict) else {}


def _load(name: str) -> ModuleType:
    """Import emu._fast.NAME after unicorn's binding has loaded libunicorn.so.2
    (see the module docstring). Raises ImportError when either fails."""
    import unicorn  # noqa: F401 - loads the libunicorn.so.2 the twin links by soname

    return importlib.import_module(f"emu._fast.{name}")


def _why(name: str, exc: ImportError) -> str:
    """One line: why twin `name` could not be imported (raising `exc`)."""
    recorded = not_built().get(name)
    if recorded:
        return f"not compiled by the build: {recorded}"
    if isinstance(exc, ModuleNotFoundError) and exc.name == f"emu._fast.{name}":
        return "not built; in a checkout `make setup` builds it"
    return f"failed to load: {exc}"


def compiled(name: str) -> ModuleType:
    """Return the compiled twin emu._fast.NAME.

    Raises TwinUnavailable with a one-line reason when EMU_PURE=1 or when the
    twin cannot be imported."""
    if pure_forced():
        raise TwinUnavailable(f"the compiled {name} twin is disabled by EMU_PURE=1")
    try:
        return _load(name)
    except ImportError as exc:
        raise TwinUnavailable(f"the compiled {name} twin emu._fast.{name} is unavailable "
                              f"({_why(name, exc)})") from None


def unavailable() -> dict[str, str]:
    """Twin name -> why it cannot be imported, for every twin that cannot
    (ignores EMU_PURE); empty when all compiled twins load."""
    out = {}
    for name in TWINS:
        try:
            _load(name)
        except ImportError as exc:
            out[name] = _why(name, exc)
    return out


def available(name: str) -> bool:
    """True if pick(name, "fast") would succeed."""
    try:
        compiled(name)
    except TwinUnavailable:
        return False
    return True


def pick(name: str, impl: str = "auto") -> ModuleType | None:
    """Return the compiled twin module for `impl` "fast" or "auto", or None
    for the pure path ("python", EMU_PURE=1, or "auto" without the twin).

    Raises TwinUnavailable for "fast" without the twin, ValueError for an
    unknown `impl`. The first "auto" fallback warns once, naming every
    unavailable twin."""
    global _warned
    if impl == "python":
        return None
    if impl == "fast":
        return compiled(name)
    if impl != "auto":
        raise ValueError(f"impl must be 'python', 'fast' or 'auto', not {impl!r}")
    if pure_forced():
        return None
    try:
        return _load(name)
    except ImportError:
        if not _warned:
            _warned = True
            print(f"emu: warning: compiled twins unavailable, using the pure-Python path "
                  f"for {_listing(unavailable())}", file=sys.stderr)
        return None


def pick_class(name: str, impl: str, reference: type) -> type:
    """The class named like `reference` from the twin `pick(name, impl)`
    chooses, or `reference` itself on the pure path."""
    mod = pick(name, impl)
    return getattr(mod, reference.__name__) if mod is not None else reference


def _listing(missing: dict[str, str]) -> str:
    """'a, b (why)' when every twin has the same reason, else 'a (why), b (why)'."""
    reasons = set(missing.values())
    if len(reasons) == 1:
        return f"{', '.join(missing)} ({reasons.pop()})"
    return ", ".join(f"{n} ({why})" for n, why in missing.items())


def describe() -> str:
    """One line saying which path is active, and why a twin is not compiled."""
    if pure_forced():
        return "pure-Python path (EMU_PURE=1)"
    missing = unavailable()
    built = [n for n in TWINS if n not in missing]
    line = f"compiled twins: {', '.join(built) or 'none'}"
    if missing:
        line += f"; pure-Python twins: {_listing(missing)}"
    return line
