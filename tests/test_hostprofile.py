"""`emu profile` (emu/tools/hostprofile.py): every py-spy sample lands in
the layer its stack says, the breakdown survives the bench's JSON, and a
real profiled run of our kernel under py-spy sorts its samples with the
run's exit status kept. py-spy needs to ptrace its child: outside CI a host
that forbids it skips the real run, saying why; CI runs it."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from emu.cli.main import main
from emu.tools import hostprofile as hp
from tests.conftest import IN_CI

LOOP = ["<module> (emu/__main__.py:5)", "main (emu/cli/main.py:82)",
        "Machine.run (emu/machine/machine.py:220)", "RunLoop.run (emu/machine/runloop.py:233)"]
SLICE = [*LOOP, "RunLoop.run_slice (emu/machine/runloop.py:151)"]
PURE = [*SLICE, "TrapCore.run (emu/machine/traps.py:178)",
        "Uc.emu_start (unicorn/unicorn_py3/unicorn.py:748)"]
GLUE = ["0x7f76c3ff9110 (libffi.so.8.1.2)", "closure_fcn (callbacks.c:317)",
        "_CallPythonObject (callbacks.c:301)"]

STACKS = [
    (["<module> (emu/__main__.py:3)", "_find_and_load (<frozen importlib._bootstrap>:1176)",
      "_compile_bytecode (<frozen importlib._bootstrap_external>:729)"], "startup"),
    (["<module> (emu/__main__.py:5)", "RunSession.finish (emu/tools/session.py:140)"],
     "startup"),
    ([*SLICE, "0x7f2fc17f7c70 (?)"], "guest"),
    ([*SLICE, "0x7f2fc17f7c70 (?)", "helper_lookup_tb_ptr_riscv64 (libunicorn.so.2)"],
     "unicorn"),
    ([*SLICE, "uc_emu_start (libunicorn.so.2)", "cpu_exec_riscv64 (libunicorn.so.2)",
      "tb_gen_code_riscv64 (libunicorn.so.2)", "tcg_optimize_riscv64 (libunicorn.so.2)"],
     "translate"),
    ([*SLICE, "0x7f2fc17f7c70 (?)", "budget__on_block (budget.pyx:175)"], "block-hook"),
    ([*SLICE, "0x7f2fc17f7c70 (?)", "helper_le_ldq_mmu_riscv64 (libunicorn.so.2)",
      "sv39__on_tlb_fill (sv39.pyx:540)", "0x7f3012b81b2e (libc.so.6)"], "tlb-fill"),
    ([*SLICE, "0x7f2fc17f7c70 (?)", "traps__on_intr (traps.pyx:300)"], "trap-path"),
    ([*SLICE, "0x7f2fc17f7c70 (?)", "helper_uc_tracecode (libunicorn.so.2)",
      "Exits._on_intr (emu/machine/exits.py:76)"], "callbacks"),
    ([*SLICE, "Traps.take_pending (emu/machine/traps.py:355)"], "between"),
    ([*SLICE], "between"),
    ([*LOOP, "Machine.now (emu/machine/machine.py:215)"], "between"),
    ([*SLICE, "0x7f3012b81b2e (libc.so.6)"], "other"),
    # EMU_PURE=1: the slice goes in through TrapCore.run and unicorn's Python
    # binding, and the hooks are Python called through ctypes
    ([*PURE, "0x7f76c4eae054 (?)"], "guest"),
    ([*PURE, "0x7f76c4eae054 (?)", "helper_lookup_tb_ptr_riscv64 (libunicorn.so.2)"],
     "unicorn"),
    ([*PURE, "0x7f7681709127 (?)", *GLUE, "PyThread_tss_get (libpython3.11.so.1.0)"],
     "callbacks"),
    ([*PURE, "0x7f7681709127 (?)", *GLUE, "BlockBudget._on_block (emu/machine/budget.py:250)",
      "count_insns (emu/machine/budget.py:110)"], "block-hook"),
    ([*PURE, "0x7f76817052c0 (?)", "unicorn_fill_tlb_riscv64 (libunicorn.so.2)", *GLUE,
      "PyFillHook._make_callback.<locals>.on_fill (emu/mmu/tlb.py:400)",
      "fill_page (emu/mmu/tlb.py:140)",
      "_walk (emu/mmu/walk.py:180)"], "tlb-fill"),
    ([*PURE, "0x7f7681709127 (?)", *GLUE, "Uart.read (emu/devices/uart.py:270)"], "callbacks"),
    ([*SLICE, "TrapCore.enter_trap (emu/machine/traps.py:120)"], "trap-path"),
    ([*PURE], "trap-path"),
]


@pytest.mark.parametrize("stack,layer", STACKS, ids=[f"{n}-{layer}" for n, (_, layer)
                                                     in enumerate(STACKS)])
def test_each_sample_lands_in_the_layer_its_stack_says(stack, layer):
    assert hp.classify(stack) == layer


def test_breakdown_counts_layers_and_functions_and_round_trips_through_json():
    lines = [";".join(stack) + f" {n + 1}\n" for n, (stack, _) in enumerate(STACKS)]
    lines += ["garbage\n", "\n", "a;b notanumber\n"]
    b = hp.breakdown(lines)
    assert b.total == sum(range(1, len(STACKS) + 1))
    want = Counter()
    for n, (_, layer) in enumerate(STACKS):
        want[layer] += n + 1
    assert b.samples == want
    assert b.top("guest") == [("(generated code)", want["guest"] / b.total)]
    assert b.top("other") == [("(libc)", want["other"] / b.total)]
    again = hp.Breakdown.from_json(json.loads(json.dumps(b.to_json())))
    assert hp.markdown(again) == hp.markdown(b)
    md = hp.markdown(b)
    assert md.splitlines()[2].startswith(f"| guest | {100 * want['guest'] / b.total:.1f}% |")
    assert sum(float(line.split("|")[2].strip(" %")) for line in md.splitlines()[2:]) == \
        pytest.approx(100, abs=0.6)


def test_bad_command_lines_are_one_line_errors(capsys):
    assert main(["profile"]) == 2
    assert main(["profile", "--rate", "0", "--", "run"]) == 2
    assert main(["profile", "--", "profile", "run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("emu profile: ") for line in err)


def test_a_missing_py_spy_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(hp.os, "access", lambda *a: False)
    monkeypatch.setattr(hp.shutil, "which", lambda *a: None)
    assert main(["profile", "--", "run", "-q"]) == 2
    assert capsys.readouterr().err.strip() == \
        "emu profile: py-spy not found (it comes with `make setup`: pip install py-spy)"


def test_a_real_run_of_our_kernel_is_sampled_and_sorted(tmp_path, kernel, capsys):
    raw, out = tmp_path / "samples.txt", tmp_path / "profile.json"
    try:
        b, status = hp.profile(["run", "-q", "-kernel", kernel, "-m", "4M", "-append",
                                "init=memhog pages=1500 passes=2 procs=2"],
                               rate_hz=200, raw_path=str(raw))
    except hp.ProfileError as exc:
        if IN_CI:
            raise
        pytest.skip(f"py-spy cannot sample here ({exc}); CI runs this test")
    assert status == 0
    assert b.total >= 50 and raw.read_text().count("RunLoop.run_slice") > 0
    inside = sum(b.samples[k] for k in ("guest", "unicorn", "translate", "block-hook",
                                        "tlb-fill", "trap-path", "callbacks"))
    assert b.samples["startup"] > 0 and inside > b.total // 4
    assert set(b.samples) <= set(hp.LAYER_KEYS)
    # the command line: the run's status, the table, the JSON
    status = main(["profile", "--rate", "50", "--json", str(out), "--", "run", "-q",
                   "-kernel", kernel, "-append", "panic"])
    saved = json.loads(out.read_text())
    assert status == 1 and saved["total"] > 0 and saved["rate_hz"] == 50
    # a run that fails says why, as it would unprofiled
    assert main(["profile", "--", "run", "-q", "-kernel", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().endswith("Is a directory")
