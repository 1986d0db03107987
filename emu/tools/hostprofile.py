"""Where a run's host time goes: a native sampling profile of a whole `emu`
process (py-spy with --native), every sample sorted into one layer of the
machine.

cProfile (`emu run --profile`) sees only Python: a slice inside unicorn is
one opaque call. py-spy samples the process from outside and unwinds both
stacks - Python frames and the native ones of libunicorn and our Cython
hooks - so a sample inside a slice says whether the host was translating
guest code, running it, in unicorn's runtime, or in one of our hooks.

The layers, decided per sample by the rules in `classify` (first match):

- startup: outside RunLoop.run - imports, loading the image, building the
  board, the report;
- translate: under unicorn's tb_gen_code (TCG turning guest code into host
  code; QEMU pays this too);
- the pure twins (EMU_PURE=1): block-hook (emu/machine/budget.py's
  BlockBudget and count_insns), tlb-fill (emu/mmu/tlb.py's PyFillHook and
  fill_page, with the walk they call), trap-path (emu/machine/traps.py's
  TrapCore, which also makes the emu_start call) - the innermost such frame
  decides, looking first at the frames below the slice's first native one
  (a Python MMIO callback under TrapCore.run is a callback);
- between: other Python code of the run loop between two emu_start calls -
  slice bookkeeping, trap delivery, devices, the clock;
- callbacks: other Python called back from inside a slice (MMIO device reads
  and writes, the interrupt and exception hooks), with the ctypes glue that
  calls it;
- then by the innermost native frame that belongs to someone: block-hook
  (fast/budget.pyx), tlb-fill (fast/sv39.pyx), trap-path (fast/traps.pyx),
  unicorn (libunicorn's runtime: TB lookup, the per-block exit checks,
  soft-MMU slow paths, hook dispatch), guest (host code TCG generated: an
  address in no library);
- other: what is left (libc, the interpreter outside any of these).

Sampling is not free: each sample stops the process while py-spy unwinds it,
so the profiled run is slower (about 20 % at 100 Hz); the shares, not the
seconds, are the result. py-spy needs to ptrace the child (root, or
kernel.yama.ptrace_scope 0).

Layer: tools (above the machine; runs it as a child process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# (key, what it is) in the order reports show them
LAYERS: tuple[tuple[str, str], ...] = (
    ("guest", "running translated guest code"),
    ("unicorn", "unicorn's runtime: TB lookup, exit checks, soft-MMU, hook dispatch"),
    ("translate", "translating guest code (TCG)"),
    ("block-hook", "emu's block hook: instruction budget, interrupt window"),
    ("tlb-fill", "emu's Sv39 TLB fill"),
    ("trap-path", "emu's trap path and slice entry"),
    ("callbacks", "Python called from inside a slice: MMIO, interrupt/exception hooks"),
    ("between", "Python between slices: trap delivery, devices, clock"),
    ("startup", "start-up and shut-down: imports, image, board, report"),
    ("other", "anything else (libc, the interpreter)"),
)
LAYER_KEYS = tuple(k for k, _ in LAYERS)


class ProfileError(Exception):
    """py-spy is missing or could not sample the run; the message is one line."""


def _is_python(frame: str) -> bool:
    # py-spy writes "func (path/file.py:LINE)" for Python frames and
    # "func (library)" or "0xADDR (?)" for native ones.
    return ".py:" in frame or "<frozen " in frame


# Python frames of the pure twins: (file, function prefixes) -> layer.
_PURE_TWINS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("emu/machine/budget.py", ("BlockBudget.", "count_insns "), "block-hook"),
    ("emu/mmu/tlb.py", ("PyFillHook.", "fill_page "), "tlb-fill"),
    ("emu/machine/traps.py", ("TrapCore.",), "trap-path"),
)


def _twin_owner(frame: str) -> str | None:
    """The layer of a pure twin's Python frame, or None."""
    for path, prefixes, layer in _PURE_TWINS:
        if f"{path}:" in frame and frame.startswith(prefixes):
            return layer
    return None


def _is_glue(frame: str) -> bool:
    """ctypes' trampoline into a Python callback (the pure twins' hooks, MMIO)."""
    return frame.startswith(("closure_fcn ", "_CallPythonObject ")) or "(libffi" in frame


def _owner(frame: str) -> str | None:
    """The layer a native frame belongs to, or None (keep looking outward)."""
    if "budget.pyx" in frame:
        return "block-hook"
    if "sv39.pyx" in frame:
        return "tlb-fill"
    if "traps.pyx" in frame:
        return "trap-path"
    if "libunicorn" in frame:
        return "unicorn"
    if frame.endswith("(?)"):
        return "guest"
    return None


def classify(stack: Sequence[str]) -> str:
    """The layer of one sample; `stack` is py-spy's frames, outermost first."""
    if not any(f.startswith("RunLoop.run (") for f in stack):
        return "startup"
    if any(f.startswith(("tb_gen_code", "tcg_gen_code")) for f in stack):
        return "translate"
    last = max((i for i, f in enumerate(stack) if f.startswith("RunLoop.run_slice (")),
               default=-1)
    inner = stack[last + 1:] if last >= 0 else []
    # the slice proper starts at the first native frame (under EMU_PURE=1,
    # TrapCore.run and unicorn's Python binding are on the way in)
    native = next((i for i, f in enumerate(inner) if not _is_python(f)), len(inner))
    in_slice = inner[native:]
    for frame in reversed(in_slice or inner):
        owner = _twin_owner(frame)
        if owner:
            return owner
    if not in_slice:
        return "between"
    if any(_is_python(f) or _is_glue(f) for f in in_slice):
        return "callbacks"
    for frame in reversed(in_slice):
        owner = _owner(frame)
        if owner:
            return owner
    return "other"


def _function(frame: str) -> str:
    """A frame's function name without py-spy's location ("f (x.py:3)" -> f);
    an unnamed address by where it lies: a library, or code TCG generated."""
    name, _, where = frame.partition(" (")
    if not name.startswith("0x"):
        return name
    where = where.rstrip(")")
    if where in ("?", ""):
        return "(generated code)"
    return f"({where.split('.so')[0]})"


@dataclass
class Breakdown:
    """Samples per layer, and per layer the innermost functions that took them."""

    samples: Counter = field(default_factory=Counter)
    functions: dict[str, Counter] = field(default_factory=dict)
    wall_s: float = 0.0
    rate_hz: int = 0

    @property
    def total(self) -> int:
        return sum(self.samples.values())

    def share(self, layer: str) -> float:
        """Fraction of all samples in `layer` (0 when nothing was sampled)."""
        return self.samples[layer] / self.total if self.total else 0.0

    def top(self, layer: str, n: int = 3) -> list[tuple[str, float]]:
        """The `n` functions with most samples in `layer`, with their share of all."""
        got = self.functions.get(layer, Counter()).most_common(n)
        return [(name, count / self.total) for name, count in got]

    def to_json(self) -> dict:
        """A plain dict (bench/summary.py keeps it in the saved run)."""
        return {"total": self.total, "wall_s": round(self.wall_s, 3), "rate_hz": self.rate_hz,
                "layers": {k: self.samples[k] for k in LAYER_KEYS if self.samples[k]},
                "top": {k: [[name, n] for name, n in self.functions[k].most_common(3)]
                        for k in LAYER_KEYS if self.samples[k]}}

    @classmethod
    def from_json(cls, data: dict) -> Breakdown:
        """The inverse of to_json (with the top three functions of each layer)."""
        return cls(samples=Counter(data["layers"]),
                   functions={k: Counter(dict((name, n) for name, n in top))
                              for k, top in data.get("top", {}).items()},
                   wall_s=data.get("wall_s", 0.0), rate_hz=data.get("rate_hz", 0))


def breakdown(raw_lines: Iterable[str]) -> Breakdown:
    """Sort py-spy's raw (collapsed-stack) output: lines `f1;f2;...;fn COUNT`."""
    out = Breakdown()
    for line in raw_lines:
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        layer = classify(frames)
        n = int(count)
        out.samples[layer] += n
        out.functions.setdefault(layer, Counter())[_function(frames[-1])] += n
    return out


def py_spy() -> str:
    """The py-spy executable beside this interpreter or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "py-spy")
    found = here if os.access(here, os.X_OK) else shutil.which("py-spy")
    if not found:
        raise ProfileError("py-spy not found (it comes with `make setup`: pip install py-spy)")
    return found


def profile(emu_args: Sequence[str], rate_hz: int = 100, raw_path: str | None = None,
            quiet: bool = True, cwd: str | None = None) -> tuple[Breakdown, int]:
    """Run `python -m emu EMU_ARGS` under py-spy at `rate_hz` samples a
    second and return (its Breakdown, the run's exit status). The raw
    samples (flamegraph.pl's collapsed format) are kept at `raw_path` if
    given. With `quiet` the run's own output is discarded. Raises
    ProfileError when py-spy cannot sample (missing, not allowed to ptrace)."""
    if rate_hz <= 0:
        raise ProfileError(f"sampling rate must be positive, not {rate_hz}")
    with tempfile.TemporaryDirectory(prefix="emu-profile-") as tmp:
        raw = raw_path or os.path.join(tmp, "samples.txt")
        status_file = os.path.join(tmp, "status")
        # The child records its own exit status: py-spy's is its own.
        child = [sys.executable, "-c",
                 "import sys; from emu.cli.main import main; s = main(sys.argv[2:]); "
                 "open(sys.argv[1], 'w').write(str(s)); sys.exit(s)",
                 status_file, *emu_args]
        cmd = [py_spy(), "record", "--native", "--rate", str(rate_hz), "--format", "raw",
               "--output", raw, "--function", "--", *child]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL if quiet else None,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t0
        if not os.path.exists(raw) or not os.path.exists(status_file):
            why = [ln for ln in done.stderr.splitlines() if ln.strip()][-1:] or ["no output"]
            raise ProfileError(f"py-spy could not sample the run: {why[0].strip()}")
        with open(raw) as f:
            result = breakdown(f)
        with open(status_file) as f:
            status = int(f.read().strip() or 1)
    if status != 0:
        # the run's own complaint (py-spy's chatter left out), or a failed
        # run would look like a short one
        for line in done.stderr.splitlines():
            if line.strip() and not line.startswith("py-spy>"):
                print(line, file=sys.stderr)
    result.wall_s = wall
    result.rate_hz = rate_hz
    return result, status


def rows(b: Breakdown) -> list[tuple[str, str, str, str, str]]:
    """(layer, share, samples, what it is, top functions) of every layer
    that has samples, in LAYERS order - the rows both tables show."""
    out = []
    for key, what in LAYERS:
        if b.samples[key]:
            top = ", ".join(f"{name} {s:.1%}" for name, s in b.top(key))
            out.append((key, f"{b.share(key):.1%}", f"{b.samples[key]:,}", what, top))
    return out


def markdown(b: Breakdown) -> str:
    """A markdown table of `b` (docs/benchmarks.md): the rows without the sample counts."""
    lines = ["| layer | share | what | where most of it went |", "|---|---|---|---|"]
    lines += [f"| {key} | {share} | {what} | {top} |" for key, share, _, what, top in rows(b)]
    return "\n".join(lines) + "\n"


def table(b: Breakdown, title: str):
    """The rows as a rich Table (emu profile)."""
    from rich.table import Table
    t = Table(title=title)
    for head, just in (("layer", "left"), ("share", "right"), ("samples", "right"),
                       ("what", "left"), ("where most of it went", "left")):
        t.add_column(head, justify=just)  # type: ignore[arg-type]
    for row in rows(b):
        t.add_row(*row)
    return t
