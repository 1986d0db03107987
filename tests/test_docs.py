"""The docs cannot drift: every command line in README.md and docs/*.md is
a real command line, and every generated figure or transcript is what its
generator prints today.

- Command lines: each line of a fenced block that starts with
  `.venv/bin/emu`, `emu`, `sudo .venv/bin/emu` or `$ emu` (continuation
  lines joined) is parsed by the real `emu` parser and its config is built
  (a bad flag fails here); then it runs, from a scratch directory, with a
  time limit, and must end with the status the line states in a trailing
  comment (`# ... exit 3`), 0 otherwise. A comment tag in parentheses marks
  a line that cannot run here: `(needs root ...)`, `(your own image)`,
  `(takes N min)` (what the generator or CI runs instead), `(with gdb ...)`.
- Generated regions (`<!-- gen: ... -->`, docs/generate.py): each is rerun
  and compared, wall-clock figures masked. `make docs` regenerates them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest

from emu.cli.main import build_parser
from emu.core import twins
from emu.tools import flags, nfsserver
from tests.conftest import IN_CI, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CMD = re.compile(r"^(?:\$ |sudo )?(?:\.venv/bin/)?emu(?:\s|$)")
NO_RUN = re.compile(r"\((needs root|your own image|takes \d+ min|with gdb)[^)]*\)")
STATUS = re.compile(r"exit(?:s| status)? (\d+)")
TIME_LIMIT = 240
# The docs show the compiled twins' runs; on the pure path (make test-pure) the
# same commands take 30x longer and check nothing about the twins.
PURE_SKIP = pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: the docs' runs are "
                               "checked on the compiled twins (make test)")

spec = importlib.util.spec_from_file_location("docs_generate", REPO / "docs" / "generate.py")
generate = importlib.util.module_from_spec(spec)
sys.modules["docs_generate"] = generate      # dataclasses look their module up
assert spec.loader is not None
spec.loader.exec_module(generate)


def command_lines() -> list[tuple[str, str, str]]:
    """(where, command, trailing comment) of every emu command line in a
    fenced block outside the generated regions."""
    out = []
    for page in PAGES:
        text = page.read_text()
        text = generate.REGION.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for block in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
            first = text[:block.start()].count("\n") + 2
            lines = block.group(1).split("\n")
            i = 0
            while i < len(lines):
                line, at = lines[i], i
                while line.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line.rstrip()[:-1] + " " + lines[i].strip()
                i += 1
                if CMD.match(line.strip()):
                    cmd, _, comment = line.strip().partition(" #")
                    out.append((f"{page.relative_to(REPO)}:{first + at}", cmd.strip(),
                                comment))
    return out


LINES = command_lines()


def _argv(cmd: str) -> list[str]:
    words = shlex.split(cmd.removeprefix("$ ").removeprefix("sudo "))
    assert words[0].endswith("emu")
    return words[1:]


def test_the_docs_have_command_lines():
    assert len(LINES) >= 20


@pytest.mark.parametrize("where,cmd,comment", LINES, ids=[w for w, _, _ in LINES])
def test_doc_command_line_parses(where, cmd, comment, capsys):
    """Every documented command line is accepted by the real parser."""
    words = _argv(cmd.split("&&")[0].strip().rstrip("&").strip())
    if words == ["--version"]:
        return
    try:
        args = build_parser().parse_args(words)
    except SystemExit as exc:       # --help and friends
        assert exc.code == 0, f"{where}: {cmd}"
        return
    if args.command in ("run", "demo", "debug") and not flags.wants_log_help(args):
        flags.config_from_args(args)        # ConfigError fails the test


@pytest.mark.slow
@PURE_SKIP
@pytest.mark.parametrize("where,cmd,comment", LINES, ids=[w for w, _, _ in LINES])
def test_doc_command_line_runs(where, cmd, comment, tmp_path):
    """Every runnable documented command line ends with its stated status."""
    tag = NO_RUN.search(comment)
    if tag:
        pytest.skip(f"{where}: marked {tag.group(0)} in the docs")
    want = int(m.group(1)) if (m := STATUS.search(comment)) else 0
    env = dict(os.environ, PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}")
    line = re.sub(r"(^|&& )(\$ )?(\.venv/bin/)?emu ", rf"\1{sys.executable} -m emu ", cmd)
    if "debug" in _argv(cmd)[:1]:
        line += " < /dev/null"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=TIME_LIMIT)
    assert r.returncode == want, f"{where}: `{cmd}` exited {r.returncode}, not {want}:\n" \
        f"{r.stderr[-1500:]}"


REGIONS = [r for page in PAGES for r in generate.regions(page)]


@pytest.mark.slow
@PURE_SKIP
@pytest.mark.parametrize("region", REGIONS, ids=[r.where for r in REGIONS])
def test_generated_region_is_current(region):
    """What the page shows is what its generator prints now (make docs)."""
    if "peer" in region.flags and not IN_CI:
        missing = nfsserver.missing_tools() if "linux-nfs" in region.cmd else []
        if os.geteuid() != 0 or missing:
            pytest.skip(f"{region.where}: a real peer's run needs root and "
                        f"{', '.join(missing) or 'its programs'}; not in CI, so skipping")
    if "linux-vs-emu" in region.cmd:
        if not (REPO / "build/linux/Image").exists() and not IN_CI:
            pytest.skip(f"{region.where}: needs the Linux bundle (make linux-guest fetches "
                        "it from Debian); not in CI, so skipping")
        # Debian's kernel moves on (point releases); the page shows one release
        shown = re.search(r"^linux bundle: (\S+)", region.body, re.M)
        have = (REPO / "build/linux/kernel-version").read_text().strip() \
            if (REPO / "build/linux/kernel-version").exists() else "none"
        if shown is not None and shown.group(1) != have:
            why = (f"{region.where}: the page shows Linux {shown.group(1)}, the bundle is "
                   f"{have}: make docs regenerates it with this one")
            if IN_CI:
                pytest.fail(why)        # CI runs what it shows, or says plainly why not
            pytest.skip(why + "; not in CI, so skipping")
    problem = generate.stale(region)
    assert problem is None, problem


def test_stale_region_is_caught(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- gen: echo 'new text 7' -->\n```text\nold text 7\n```\n"
                    "<!-- end gen -->\n<!-- gen: echo 'speed 12.5 MIPS' -->\n```text\n"
                    "speed 99.0 MIPS\n```\n<!-- end gen -->\n")
    regions = generate.regions(page)
    assert generate.stale(regions[0]) is not None
    assert generate.stale(regions[1]) is None       # wall-clock figures are masked
    assert generate.main([str(page)]) == 0
    assert generate.main(["--check", str(page)]) == 0
    assert "new text 7" in page.read_text()


def test_a_real_peers_region_is_checked_for_shape_not_figures(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- gen[peer]: printf 'a  12.5  yes\\n' -->\n```text\na  9.25  yes\n```\n"
                    "<!-- end gen -->\n<!-- gen[peer]: echo 'a 1 NO' -->\n```text\n"
                    "a 1 yes\n```\n<!-- end gen -->\n")
    same_shape, other_words = generate.regions(page)
    assert generate.stale(same_shape) is None
    assert generate.stale(other_words) is not None


def test_excerpt_cuts_a_transcript_at_prompts():
    text = "banner\n(emu) a\nA\n(emu) b\nB\nB2\n(emu) c\nC\n"
    assert generate.excerpt(text, 2, 2) == "(emu) b\nB\nB2\n"
    assert generate.excerpt(text, None, 1) == "banner\n(emu) a\nA\n"
    assert generate.excerpt(text, 3, None) == "(emu) c\nC\n"
