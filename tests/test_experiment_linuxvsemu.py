"""`emu experiment linux-vs-emu`: our kernel and Debian's Linux swap over
the same link to the same target, both verify every page, and the capture
at each guest's NIC gives the same figures for both initiators (round
trips include the link's 2 x 50 us); bad flags are one line and status 2.

The Linux bundle comes from Debian's archive: .ci/run builds it before
make test; outside CI the end-to-end test skips when it is missing."""

from __future__ import annotations

import csv

import pytest

from emu.core import twins
from tests.test_cli import emu
from tests.test_linux import bundle


@pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: Linux's swap run takes many "
                    "minutes on the pure twins; make test runs the experiment")
def test_quick_sweep_runs_both_guests_on_the_same_link(tmp_path):
    image, _ = bundle()
    out_csv, out_png = tmp_path / "lve.csv", tmp_path / "lve.png"
    r = emu("experiment", "linux-vs-emu", "--quick", "-j", "2", "--linux",
            image.rsplit("/", 1)[0], "--csv", str(out_csv), "--plot", str(out_png))
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["guest", "link", "done"]
    rows = {row["guest"]: row for row in csv.DictReader(out_csv.open())}
    assert set(rows) == {"emu", "linux"}
    for guest, row in rows.items():
        assert row["completed"] == "True" and row["mismatches"] == "0", (guest, row)
        assert int(row["pages_out"]) > 1000 and int(row["requests"]) > 1000
        assert 100.0 <= float(row["rtt_mean_us"]) < 1000.0     # the link's 2 x 50 us, at least
        assert float(row["mb_per_s"]) > 0 and int(row["window_max"]) >= 1
    assert out_png.stat().st_size > 10_000


@pytest.mark.parametrize("args, needle", [
    (["--links", "nope"], "--links: 'nope' is not one of"),
    (["--guests", "bsd"], "--guests: 'bsd' is not one of"),
    (["--pages", "3"], "--pages: 3 is not in"),
    (["--linux", "/nonexistent"], "/nonexistent/Image is missing: make linux-guest"),
])
def test_bad_flags_are_one_line(args, needle):
    r = emu("experiment", "linux-vs-emu", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_linux_nfs_needs_root_and_the_servers_programs(monkeypatch):
    from emu.core.units import ConfigError
    from emu.tools.experiments import linuxvsemu as lve
    todo = lve.cases(["linux-nfs"], ["clean"], 512, 1)
    image, _ = bundle()
    folder = image.rsplit("/", 1)[0]
    monkeypatch.setattr(lve.os, "geteuid", lambda: 1000)
    with pytest.raises(ConfigError, match="linux-nfs needs root"):
        lve.check_cases(todo, folder)
    monkeypatch.setattr(lve.os, "geteuid", lambda: 0)
    monkeypatch.setattr("emu.tools.nfsserver.missing_tools", lambda: ["ganesha.nfsd"])
    with pytest.raises(ConfigError, match="linux-nfs needs ganesha.nfsd"):
        lve.check_cases(todo, folder)


@pytest.mark.peer
@pytest.mark.skipif(twins.pure_forced(), reason="EMU_PURE=1: Linux's swap run takes many "
                    "minutes on the pure twins; make test runs the experiment")
def test_linux_nfs_rows_come_from_the_tcp_capture():
    """The linux-nfs guest: Linux's nfsswap against nfs-ganesha behind the
    bridge (emu/tools/nfsserver.py), figures from tcpflow.py; AoE's
    requests and window are "-"."""
    from emu.tools import nfsserver
    from emu.tools.experiments import linuxvsemu as lve
    from tests.test_net_vblade import require
    require(*nfsserver.TOOLS)
    image, _ = bundle()
    case = lve.cases(["linux-nfs"], ["clean"], 8192, 1)[0]
    row = lve.measure(None, image.rsplit("/", 1)[0], case)
    assert row.completed and row.mismatches == 0, row.stop
    assert row.pages_out > 0 and row.requests == lve.NA and row.window_max == lve.NA
    assert row.rtt_mean_us >= 100.0 and row.mb_moved > 30 and row.mb_per_s > 0
    text = lve.table_text([row])
    assert "linux-nfs" in text and " - " in text


def test_our_kernel_without_reserves_deadlocks_where_with_them_it_completes():
    """The seed's question asked of our kernel inside the same experiment:
    1 % loss and 20,000 junk frames a second; reserves on complete, off the
    detector stops the run (docs/linux.md: and Linux)."""
    from emu.tools.experiments import linuxvsemu as lve
    rows = [lve.measure(None, "unused", c)
            for c in lve.cases(["emu", "emu-noreserve"], ["loss1"], 12288, 1, noise="20000")]
    assert [r.outcome for r in rows] == ["completed", "deadlock (detector)"]
    assert rows[0].completed and rows[0].mismatches == 0 and not rows[1].completed
    assert "deadlock" in rows[1].stop
    text = lve.table_text(rows)
    assert "emu-noreserve on loss1: deadlock" in text


def test_what_linuxs_console_says_becomes_the_outcome():
    from emu.tools.experiments import linuxvsemu as lve
    console = (b"[  242.1] INFO: task kswapd0:40 blocked for more than 120 seconds.\n"
               b"[  363.0] INFO: task memhog:162 blocked for more than 241 seconds.\n"
               b"[  400.0] Out of memory: Killed process 162 (memhog)\n")
    assert lve._outcome(False, False, console, linux=True) == \
        "stalled, 2 hung-task reports, 1 OOM kills"
    assert lve._outcome(True, False, b"memhog: pages=1 passes=1 mismatches=0", True) == \
        "completed"
    case = lve.cases(["linux"], ["loss1"], 12288, 1, noise="20000", minfree=1024)[0]
    cfg = lve._config(case, None, "build/linux", "/dev/null", 1)
    assert "minfree=1024" in cfg.append and cfg.net.noise == "20000"


@pytest.mark.parametrize("args, needle", [
    (["--noise", "lots"], "--noise:"),
    (["--minfree", "5"], "--minfree: 5 is not in"),
])
def test_bad_exhaustion_flags_are_one_line(args, needle):
    r = emu("experiment", "linux-vs-emu", *args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr.strip().splitlines()[0]
