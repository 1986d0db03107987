#!/usr/bin/env python3
"""The benchmarks' summary: the figures `make bench` measured, one row per
hot path - its reference, the empty-callback floor where there is one, its
pure twin and its compiled twin - with the ratios that matter, measured in
the same run.

    summary.py table [FILE]                 the table (rich) of a saved run
    summary.py markdown [FILE]              the same as a markdown table (docs)
    summary.py profile [FILE]               where the host's time went in the
                                            profiled runs (markdown, docs)
    summary.py usertests [FILE]             xv6's usertests, test by test, on
                                            QEMU, QEMU -icount and emu (markdown)
    summary.py plot FILE PNG                the ratio plot
    summary.py compare [--threshold PCT] [OLD NEW]
                                            every figure that moved more than
                                            PCT % (default 10) between two saved
                                            runs (default: the last two saved)

FILE defaults to bench/results/latest.json, the run the docs show. Every
`make bench` also keeps its summary in .benchmarks/emu/ for `compare`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LATEST = HERE / "results" / "latest.json"
HISTORY = HERE.parent / ".benchmarks" / "emu"
COLUMNS = ("reference", "floor", "pure", "compiled")


@dataclass(frozen=True)
class Row:
    """One hot path: what its columns are and which ratios to show."""

    name: str
    unit: str
    better: str                           # "lower" or "higher" values are better
    labels: dict[str, str]                # column -> what was measured
    ratios: tuple[tuple[str, str, str, str], ...] = ()   # (label, num, den, goal)


ROWS: tuple[Row, ...] = (
    Row("TLB fill, S-mode", "ns/fill", "lower",
        {"reference": "unicorn's built-in walker", "floor": "empty fill callback",
         "pure": "PyFillHook", "compiled": "FillHook"},
        (("compiled / built-in", "compiled", "reference", "<= 0.8"),
         ("floor / built-in", "floor", "reference", ""),
         ("pure / compiled", "pure", "compiled", ""))),
    Row("TLB fill, U-mode", "ns/fill", "lower",
        {"reference": "unicorn's built-in walker", "floor": "empty fill callback",
         "pure": "PyFillHook", "compiled": "FillHook"},
        (("compiled / built-in", "compiled", "reference", ""),
         ("floor / built-in", "floor", "reference", ""))),
    *(Row(f"ALU loop, {n}-insn blocks", "MIPS", "higher",
          {"reference": "raw unicorn, no hook", "floor": "raw unicorn + empty block hook",
           "compiled": "emu: budget + clock + timer irqs"},
          (("compiled / raw", "compiled", "reference", ">= 0.8" if n == 6 else ""),
           ("floor / raw", "floor", "reference", "")))
      for n in (6, 14, 30)),
    Row("Trap delivery", "us/trap", "lower",
        {"pure": "TrapCore (Python)", "compiled": "TrapCore (Cython)"},
        (("compiled / pure", "compiled", "pure", "<= 0.2"),)),
    Row("Trap round trip (ecall from U, handler, sret)", "us/trap", "lower",
        {"pure": "Python trap path", "compiled": "compiled trap path"},
        (("compiled / pure", "compiled", "pure", ""),)),
    Row("Frame parse", "frames/s", "higher",
        {"reference": "scapy", "pure": "emu.net.frames", "compiled": "fast/frames.pyx"},
        (("compiled / scapy", "compiled", "reference", ""),
         ("compiled / pure", "compiled", "pure", ""))),
    Row("Frame build", "frames/s", "higher",
        {"reference": "scapy", "pure": "emu.net.frames", "compiled": "fast/frames.pyx"},
        (("compiled / scapy", "compiled", "reference", ""),
         ("compiled / pure", "compiled", "pure", ""))),
    Row("I/O path round trip (NIC, switch, AoE target)", "us/round trip", "lower",
        {"pure": "Python clock, links, switch, target, eNIC, PLIC",
         "compiled": "their Cython twins"},
        (("compiled / pure", "compiled", "pure", ""),)),
    Row("Swap, clean link", "MB/wall s", "higher",
        {"pure": "pure twins", "compiled": "compiled twins"},
        (("compiled / pure", "compiled", "pure", ""),)),
    Row("Swap, 5% loss", "MB/wall s", "higher",
        {"pure": "pure twins", "compiled": "compiled twins"},
        (("compiled / pure", "compiled", "pure", ""),)),
    *(Row(name, "wall s", "lower", {"reference": "QEMU 7.2", "compiled": "emu"},
          (("emu / QEMU", "compiled", "reference", "<= 1.5"),))
      for name in ("xv6 boot to the shell + echo hi | wc", "xv6 usertests -q")),
    # QEMU's own deterministic clock, the one emu always has: one instruction
    # per virtual ns, idle time jumping to the next deadline
    *(Row(f"{name}, QEMU -icount shift=0,sleep=off", "wall s", "lower",
          {"reference": "QEMU 7.2 -icount shift=0,sleep=off", "compiled": "emu (its default "
           "clock is -icount shift=0,sleep=off)"},
          (("emu / QEMU -icount", "compiled", "reference", ""),))
      for name in ("xv6 boot to the shell + echo hi | wc", "xv6 usertests -q")),
    Row("Linux boot to /init + memhog", "wall s", "lower", {"reference": "QEMU 7.2",
                                                            "compiled": "emu"},
        (("emu / QEMU", "compiled", "reference", "<= 2"),)),
    *(Row(f"Sweep {sweep}, {how}", "wall s", "lower",
          {"reference": "-j 1 (one process)", "compiled": label},
          ((f"{short} / 1 worker", "compiled", "reference", ""),))
      for sweep in ("kmem --quick (3 boots)", "8 memhog runs", "swapoff 4 runs (16 MiB out)")
      for how, label, short in (("2 workers", "-j 2 (loky)", "2 workers"),
                                ("Dask", "--cluster, 2 local Dask workers", "Dask"))),
)
ROW_BY_NAME = {r.name: r for r in ROWS}

_figures: dict[str, dict[str, float]] = {}
_profiles: dict[str, dict] = {}
_usertests: dict[str, dict[str, float]] = {}


def record(row: str, column: str, value: float) -> None:
    """Keep one figure of this run (a benchmark calls this)."""
    assert row in ROW_BY_NAME and column in ROW_BY_NAME[row].labels, (row, column)
    _figures.setdefault(row, {})[column] = float(value)


def record_profile(name: str, breakdown: dict) -> None:
    """Keep one run's host profile (emu.tools.hostprofile.Breakdown.to_json())."""
    _profiles[name] = breakdown


def record_usertests(machine: str, seconds: dict[str, float]) -> None:
    """Keep the wall seconds of each xv6 usertests test on `machine`."""
    _usertests[machine] = dict(seconds)


def ratios(figs: dict[str, dict[str, float]]) -> list[tuple[str, str, float, str]]:
    """(row, label, value, goal) of every ratio both of whose figures exist."""
    out = []
    for row in ROWS:
        f = figs.get(row.name, {})
        for label, num, den, goal in row.ratios:
            if num in f and den in f and f[den]:
                out.append((row.name, label, f[num] / f[den], goal))
    return out


def save(figs: dict[str, dict[str, float]] | None = None, publish: bool = False) -> Path | None:
    """Write this run's figures to the history (and, with `publish`, to
    bench/results/latest.json, the run the docs show). Returns the history
    file, or None when nothing was measured."""
    figs = _figures if figs is None else figs
    if not figs:
        return None
    data = {"taken": time.strftime("%Y-%m-%d %H:%M:%S"), "figures": figs}
    if _profiles:
        data["profiles"] = _profiles
    if _usertests:
        data["usertests"] = _usertests
    HISTORY.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if publish:
        LATEST.parent.mkdir(parents=True, exist_ok=True)
        LATEST.write_text(text)
    out = HISTORY / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(text)
    return out


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:,.3g}" if v < 10 else f"{v:,.1f}"


def _goal_met(value: float, goal: str) -> str:
    if not goal:
        return ""
    op, target = goal.split()
    ok = value <= float(target) if op == "<=" else value >= float(target)
    return f"goal {goal}: {'met' if ok else 'NOT met'}"


def table(data: dict, markdown: bool = False):
    """The summary of a saved run: a rich Table, or markdown text."""
    figs = data["figures"]
    head = ["hot path", "unit", *COLUMNS, "ratios"]
    rows = []
    by_row: dict[str, list[str]] = {}
    for name, label, value, goal in ratios(figs):
        met = _goal_met(value, goal)
        by_row.setdefault(name, []).append(f"{label} {value:.2f}" + (f" ({met})" if met else ""))
    for row in ROWS:
        f = figs.get(row.name)
        if not f:
            continue
        cells = [_fmt(f[c]) if c in f else "-" for c in COLUMNS]
        rows.append([row.name, row.unit, *cells, "; ".join(by_row.get(row.name, []))])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(lines) + "\n"
    from rich.table import Table
    t = Table(title=f"emu benchmarks ({data['taken']}; one run, ratios from the same run)")
    for h in head:
        t.add_column(h, justify="left" if h in ("hot path", "unit", "ratios") else "right")
    for r in rows:
        t.add_row(*r)
    return t


def plot(data: dict, png: str) -> None:
    """The ratio plot: one bar per ratio, its goal marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = ratios(data["figures"])
    if not rs:
        raise SystemExit("summary: no ratios in this run")
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rs) + 1.2))
    labels = [f"{row}: {label}" for row, label, _, _ in rs]
    values = [v for _, _, v, _ in rs]
    colors = ["#0072B2" if not g else ("#009E73" if "NOT" not in _goal_met(v, g) else "#D55E00")
              for _, _, v, g in rs]
    y = range(len(rs))
    ax.barh(list(y), values, color=colors)
    for i, (_, _, v, g) in enumerate(rs):
        ax.text(v, i, f" {v:.2f}" + (f"  (goal {g})" if g else ""), va="center", fontsize=8)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("ratio (log scale; green: goal met, vermilion: goal missed, blue: no goal)")
    ax.set_title(f"emu benchmark ratios, one run ({data['taken']})")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def compare(old: dict, new: dict, threshold: float) -> list[str]:
    """Every figure and ratio that moved more than `threshold` percent, worse
    or better, in words."""
    out = []
    for row in ROWS:
        o, n = old["figures"].get(row.name, {}), new["figures"].get(row.name, {})
        for col in COLUMNS:
            if col in o and col in n and o[col]:
                change = (n[col] - o[col]) / o[col] * 100
                if abs(change) > threshold:
                    worse = (change > 0) == (row.better == "lower")
                    out.append(f"{'SLOWER' if worse else 'faster'}: {row.name}, {col} "
                               f"({row.labels[col]}): {_fmt(o[col])} -> {_fmt(n[col])} "
                               f"{row.unit} ({change:+.1f}%)")
    return out


def _print_profiles(data: dict) -> int:
    """Print each saved profile as a markdown table; 1 if the run has none."""
    from emu.tools.hostprofile import Breakdown, markdown

    profiles = data.get("profiles", {})
    if not profiles:
        print("summary: this run holds no profile (a whole `make bench` records one)",
              file=sys.stderr)
        return 1
    for name, saved in profiles.items():
        b = Breakdown.from_json(saved)
        print(f"**{name}**: {b.total:,} samples at {b.rate_hz} Hz (py-spy --native), "
              f"{b.wall_s:.1f} s wall under sampling.\n")
        print(markdown(b))
    return 0


def usertests_markdown(data: dict, top: int = 12) -> str:
    """The `top` usertests that took emu longest, with their seconds on each
    machine, and the sum of all tests; raises KeyError without them."""
    runs = data["usertests"]
    machines = list(runs)
    emu = runs["emu"]
    lines = ["| test | " + " | ".join(f"{m} (s)" for m in machines) + " | emu share |",
             "|---|" + "---|" * (len(machines) + 1)]
    total = sum(emu.values())
    for name in sorted(emu, key=lambda k: -emu[k])[:top]:
        cells = [_fmt(runs[m][name]) if name in runs[m] else "-" for m in machines]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {emu[name] / total:.0%} |")
    cells = [_fmt(sum(runs[m].values())) for m in machines]
    lines.append(f"| all {len(emu)} tests | " + " | ".join(cells) + " | 100% |")
    return "\n".join(lines) + "\n"


def _history() -> list[Path]:
    return sorted(HISTORY.glob("*.json")) if HISTORY.exists() else []


def main(argv: list[str] | None = None) -> int:
    """The command line (module docstring). Returns the exit status."""
    ap = argparse.ArgumentParser(prog="bench/summary.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("table", "markdown", "profile"):
        s = sub.add_parser(name)
        s.add_argument("file", nargs="?", default=str(LATEST))
    s = sub.add_parser("plot")
    s.add_argument("file")
    s.add_argument("png")
    s = sub.add_parser("usertests")
    s.add_argument("file", nargs="?", default=str(LATEST))
    s = sub.add_parser("compare")
    s.add_argument("--threshold", type=float, default=10.0)
    s.add_argument("files", nargs="*")
    args = ap.parse_args(argv)
    if args.cmd == "profile":
        return _print_profiles(json.loads(Path(args.file).read_text()))
    if args.cmd in ("table", "markdown"):
        data = json.loads(Path(args.file).read_text())
        if args.cmd == "markdown":
            print(table(data, markdown=True), end="")
        else:
            from rich.console import Console
            Console(width=160).print(table(data))
        return 0
    if args.cmd == "usertests":
        data = json.loads(Path(args.file).read_text())
        if "usertests" not in data:
            print("summary: this run holds no usertests breakdown (make bench records one)",
                  file=sys.stderr)
            return 1
        print(usertests_markdown(data), end="")
        return 0
    if args.cmd == "plot":
        plot(json.loads(Path(args.file).read_text()), args.png)
        return 0
    files = [Path(f) for f in args.files] or _history()[-2:]
    if len(files) != 2:
        print("bench-compare: needs two saved runs (run `make bench` twice, or name two files)",
              file=sys.stderr)
        return 2
    old, new = (json.loads(f.read_text()) for f in files)
    moved = compare(old, new, args.threshold)
    print(f"comparing {files[0].name} ({old['taken']}) with {files[1].name} ({new['taken']}), "
          f"threshold {args.threshold:g}%:")
    print("\n".join(f"  {m}" for m in moved) if moved else
          "  no figure moved more than the threshold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
