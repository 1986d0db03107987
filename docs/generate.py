#!/usr/bin/env python3
"""Regenerate the figures and transcripts of README.md and docs/*.md
(`make docs`), or check that they are current (`--check`, run by
tests/test_docs.py).

A generated region in a page:

    <!-- gen: COMMAND -->
    ```text
    ...what COMMAND printed...
    ```
    <!-- end gen -->

COMMAND runs with bash in the repository root with .venv/bin first on PATH,
so `emu` is this checkout's. Flags in brackets change the shape:
`<!-- gen[prompt]: ... -->` starts the block with `$ COMMAND` (without its
`< FILE` input), as a terminal transcript; `<!-- gen[md]: ... -->` inserts
the output as markdown (a table), not in a fenced block;
`<!-- gen[from=N,to=M]: emu debug < SESSION -->` keeps only the part of a
debugger transcript from its N-th `(emu)` prompt to its M-th (both
counted from 1, inclusive), so one scripted session can be shown in
pieces between paragraphs; `<!-- gen[peer]: ... -->` marks a run against
a real peer (a server in a namespace, the wall clock), whose figures
differ from run to run: the check compares it with every number masked,
so its shape and words must still match. The output has the
repository's own path removed, so pages do not name this machine.

`--check` reruns every region and compares, with wall-clock figures masked
(the numbers on lines that mention MIPS, wall time or per wall second):
those differ from run to run, everything else must not.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
REGION = re.compile(r"<!-- gen(?:\[(?P<flags>[\w,=]+)\])?: (?P<cmd>.*?) -->\n"
                    r"(?P<body>.*?)<!-- end gen -->\n", re.S)
WALL_LINE = re.compile(r"MIPS|wall|per wall|/wall")
NUMBER = re.compile(r"\d[\d,.]*")


@dataclass
class Region:
    """One generated region of a page."""

    page: Path
    cmd: str
    flags: set[str]
    body: str
    start: int
    end: int

    @property
    def where(self) -> str:
        line = self.page.read_text()[:self.start].count("\n") + 1
        return f"{_short(self.page)}:{line}"


def _short(page: Path) -> str:
    return str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)


def regions(page: Path) -> list[Region]:
    """The generated regions of `page`, in order."""
    text = page.read_text()
    return [Region(page, m.group("cmd"), set((m.group("flags") or "").split(",")) - {""},
                   m.group("body"), m.start(), m.end()) for m in REGION.finditer(text)]


def run(cmd: str, timeout: float = 900) -> str:
    """Run `cmd` as the generator does; returns its stdout and stderr, merged."""
    env = dict(os.environ)
    env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
    env["COLUMNS"] = "100"
    env.pop("EMU_PURE", None)
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=REPO, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    out = r.stdout.replace(f"{REPO}/", "").replace(str(REPO), ".")
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"


def _option(region: Region, name: str) -> int | None:
    for f in region.flags:
        if f.startswith(name + "="):
            return int(f.split("=", 1)[1])
    return None


def excerpt(output: str, first: int | None, last: int | None) -> str:
    """The transcript from the `first`-th `(emu) ` prompt line through
    everything the `last`-th command printed (1-based; None: open end)."""
    lines = output.splitlines(keepends=True)
    prompts = [i for i, line in enumerate(lines) if line.startswith("(emu) ")]
    lo = prompts[first - 1] if first and first <= len(prompts) else 0
    hi = prompts[last] if last and last < len(prompts) else len(lines)
    return "".join(lines[lo:hi])


def render(region: Region, output: str) -> str:
    """The body a region gets for `output`."""
    if "md" in region.flags:
        return output
    first, last = _option(region, "from"), _option(region, "to")
    if first or last:
        output = excerpt(output, first, last)
    shown = ""
    if "prompt" in region.flags:
        shown = "$ " + re.sub(r"\s*<\s*\S+", "", region.cmd).strip() + "\n"
    return f"```text\n{shown}{output}```\n"


def masked(text: str, every: bool = False) -> str:
    """`text` with the wall-clock figures (`every`: all numbers) replaced
    by '#', and the runs of spaces that align table columns made one."""
    lines = []
    for line in text.splitlines():
        if every:
            line = re.sub(r" +", " ", re.sub(r"-+", "-", NUMBER.sub("#", line)))
        elif WALL_LINE.search(line):
            line = NUMBER.sub("#", line)
        lines.append(line)
    return "\n".join(lines)


def current(region: Region) -> str:
    """What the region should hold now."""
    return render(region, run(region.cmd))


def update(page: Path) -> int:
    """Regenerate every region of `page`. Returns how many changed."""
    text = page.read_text()
    changed = 0
    for region in reversed(regions(page)):
        body = current(region)
        if masked(body) != masked(region.body):
            changed += 1
        head = text[region.start:region.end].split("\n", 1)[0] + "\n"
        text = text[:region.start] + head + body + "<!-- end gen -->\n" + text[region.end:]
    page.write_text(text)
    return changed


def stale(region: Region) -> str | None:
    """None if the region is current, else a short diff."""
    fresh = current(region)
    every = "peer" in region.flags
    if masked(fresh, every) == masked(region.body, every):
        return None
    import difflib
    diff = difflib.unified_diff(masked(region.body, every).splitlines(),
                                masked(fresh, every).splitlines(),
                                "page", "generator", lineterm="", n=1)
    return f"{region.where}: `{region.cmd}` prints something else:\n" + "\n".join(
        list(diff)[:40])


def main(argv: list[str] | None = None) -> int:
    """`generate.py [--check] [PAGE...]`. Returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="report stale regions, change nothing")
    ap.add_argument("pages", nargs="*", type=Path, help="pages (default: README.md, docs/*.md)")
    args = ap.parse_args(argv)
    pages = [p.resolve() for p in args.pages] or PAGES
    if args.check:
        problems = [s for p in pages for r in regions(p) if (s := stale(r))]
        print("\n\n".join(problems) if problems else "docs: every generated region is current")
        return 1 if problems else 0
    for p in pages:
        n = update(p)
        if n:
            print(f"{_short(p)}: {n} region(s) regenerated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
