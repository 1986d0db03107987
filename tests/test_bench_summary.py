"""bench/summary.py, the benchmarks' summary: a row name holding `|` stays
one markdown cell, and a saved run's host profile prints as the table
docs/benchmarks.md shows (or one line when the run holds none)."""

from __future__ import annotations

import json

from bench import summary
from emu.tools import hostprofile as hp

RUN = {"taken": "2026-12-05 03:00:00",
       "figures": {"xv6 boot to the shell + echo hi | wc": {"reference": 0.5, "compiled": 1.0}}}


def test_a_pipe_in_a_row_name_stays_one_markdown_cell():
    lines = summary.table(RUN, markdown=True).splitlines()
    head, row = lines[0], lines[2]
    assert row.replace("\\|", "").count("|") == head.count("|")
    assert "echo hi \\| wc" in row
    assert "emu / QEMU 2.00" in row


def test_the_profile_of_a_saved_run_prints_as_markdown(tmp_path, capsys):
    b = hp.breakdown(["RunLoop.run (r.py:1);RunLoop.run_slice (r.py:2);0x7f00 (?) 3\n",
                      "main (m.py:1) 1\n"])
    b.wall_s, b.rate_hz = 1.5, 200
    f = tmp_path / "run.json"
    f.write_text(json.dumps({**RUN, "profiles": {"Linux boot": b.to_json()}}))
    assert summary.main(["profile", str(f)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("**Linux boot**: 4 samples at 200 Hz (py-spy --native), 1.5 s wall")
    assert "| guest | 75.0% | running translated guest code | (generated code) 75.0% |" in out
    assert "| startup | 25.0% |" in out
    f.write_text(json.dumps(RUN))
    assert summary.main(["profile", str(f)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
