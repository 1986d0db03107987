"""The guest kernel: its in-kernel tests (one pytest result per kernel test,
on each MMU), the default demo, memtouch, segfault containment, boot
parameters, determinism, and the host's reading of the kernel's counters
(emu/guestview/kstats.py) against the headers and the machine's own figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from emu.guestview import kstats
from emu.machine.machine import Machine
from emu.tools import report
from tests.conftest import IMPLS, REPO, boot

KERNEL_SRC = REPO / "guest" / "kernel"
# The names in ktest.c's table, in order: the kernel must report each once.
KTEST_NAMES = re.findall(r'^\s*\{"(\w+)", t_\w+(?:, \w+)?\},',
                         (KERNEL_SRC / "ktest.c").read_text(), re.M)
RESULT = re.compile(r"^(PASS|FAIL) ([^\s:]+)(?:: ([^\r\n]*))?\r?$", re.M)
SEGFAULT = re.compile(
    rb"pid (\d+) \((\w+)\): segfault at 0x([0-9a-f]+) cause (\d+) pc 0x([0-9a-f]+)")
MAX_INSNS = 200_000_000


def results(m: Machine) -> dict[str, list[tuple[str, str]]]:
    """Map each test name the kernel reported to its [(PASS|FAIL, why)] lines."""
    out: dict[str, list[tuple[str, str]]] = {}
    for status, name, why in RESULT.findall(m.console.decode(errors="replace")):
        out.setdefault(name, []).append((status, why))
    return out


@pytest.fixture(scope="module")
def ktest_boot(kernel) -> Callable[[str], Machine]:
    """Return mmu -> the machine after one `-append test` boot on that MMU
    (each MMU boots once per module)."""
    runs: dict[str, Machine] = {}

    def get(mmu: str) -> Machine:
        if mmu not in runs:
            runs[mmu] = boot(kernel, mmu=mmu, append="test", max_insns=MAX_INSNS)
        return runs[mmu]

    return get


# -- the in-kernel tests ---------------------------------------------------------

def test_ktest_table_is_found():
    assert len(KTEST_NAMES) >= 15 and len(set(KTEST_NAMES)) == len(KTEST_NAMES)
    for required in ("kalloc", "kmalloc", "pagetable", "demand_zero", "sched_rr", "syscalls",
                     "badptr"):
        assert required in KTEST_NAMES


@pytest.mark.parametrize("mmu", IMPLS)
@pytest.mark.parametrize("name", KTEST_NAMES)
def test_in_kernel(ktest_boot, mmu, name):
    lines = results(ktest_boot(mmu)).get(name)
    assert lines, f"the kernel did not report test {name!r}"
    status, why = lines[0]
    assert status == "PASS", f"FAIL {name}: {why}"


@pytest.mark.parametrize("mmu", IMPLS)
def test_ktest_reports_each_test_once_and_exits_with_failures(ktest_boot, mmu):
    m = ktest_boot(mmu)
    res = results(m)
    assert list(res) == KTEST_NAMES, "reported tests differ from ktest.c's table"
    assert all(len(v) == 1 for v in res.values())
    failed = sum(v[0][0] == "FAIL" for v in res.values())
    assert m.exit_status == failed, m.stop_reason
    assert f"ktest: {len(KTEST_NAMES) - failed} passed, {failed} failed".encode() in m.console


def test_ktest_selection_and_unknown_names(kernel):
    m = boot(kernel, append="test=kalloc,watermarks,nosuch", max_insns=MAX_INSNS)
    res = results(m)
    assert res == {"kalloc": [("PASS", "")], "watermarks": [("PASS", "")],
                   "nosuch": [("FAIL", "no such test")]}
    assert m.exit_status == 1


# -- the default demo and user programs ------------------------------------------

DEMO_LINES = [
    b"kalloc: ",
    b"vm: Sv39 on",
    b"boot: starting init",
    b"hello: hello from pid 2 world",
    b"forktest: ok, 3 children",
    b"memtouch: 64 pages touched and verified",
    b"segv: null",
    b"init: segv was killed; the kernel and init carry on",
    b"init: demo done",
    b"init: exited with status 0",
    b"boot: all good, powering off",
]


@pytest.mark.parametrize("mmu", IMPLS)
def test_default_demo(kernel, mmu):
    m = boot(kernel, mmu=mmu)
    out = m.console.decode(errors="replace")
    assert m.exit_status == 0, m.stop_reason + out
    pos = 0
    for line in DEMO_LINES:
        at = m.console.find(line, pos)
        assert at >= 0, f"missing {line!r} after offset {pos} in:\n{out}"
        pos = at
    # The segfault is contained: one line, for segv, at address 0, a load.
    faults = SEGFAULT.findall(m.console)
    assert len(faults) == 1 and faults[0][1:4] == (b"segv", b"0", b"13")
    # Round robin: the forktest children started before any of them finished.
    starts = [m.console.find(f"forktest: child {i} (pid".encode()) for i in range(3)]
    dones = [m.console.find(f"forktest: child {i} done".encode()) for i in range(3)]
    assert min(starts) >= 0 and max(starts) < min(dones)
    k = kstats.collect(m)
    assert k["processes_created"] == 8   # init, hello, forktest + 3, memtouch, segv
    assert k["preemptions"] > 0 and k["context_switches"] > k["processes_created"]
    assert k["page_faults"]["demand_zero"] >= 64 and k["page_faults"]["image"] > 0
    assert k["page_faults"]["bad"] == 1 and k["segfaults"] == 1
    assert k["page_faults"]["spurious"] == 0


@pytest.mark.parametrize("mmu", IMPLS)
def test_memtouch_1000_pages(kernel, mmu):
    m = boot(kernel, mmu=mmu, append="init=memtouch pages=1000")
    assert m.exit_status == 0, m.console.decode(errors="replace")
    assert b"memtouch: 1000 pages touched and verified" in m.console
    k = kstats.collect(m)
    assert k["page_faults"]["demand_zero"] >= 1000
    assert k["oom_kills"] == 0 and k["memory"]["pages_free"] > k["memory"]["watermarks"]["high"]


def test_memtouch_beyond_ram_is_killed_not_hung(kernel):
    m = boot(kernel, append="swap=off init=memtouch pages=5000")
    assert m.exit_status == 255   # init passes on memtouch's -1
    assert re.search(rb"pid 2 \(memtouch\): out of memory at 0x[0-9a-f]+", m.console)
    k = kstats.collect(m)
    assert k["oom_kills"] == 1 and k["alloc_failures"] >= 1


@pytest.mark.parametrize("mode, cause, where", [
    ("null", 13, lambda va: va == 0),
    ("kernel", 13, lambda va: va == 0x8020_0000),
    ("text", 15, lambda va: 0x4000_0000 <= va < 0x4010_0000),
    ("exec", 12, lambda va: 0x4000_0000 <= va < 0x4010_0000),
    ("guard", 15, lambda va: 0x7FFB_F000 <= va < 0x7FFC_0000),
])
def test_segfault_is_one_line_and_kills_only_the_process(kernel, mode, cause, where):
    m = boot(kernel, append=f"init=segv {mode}")
    faults = SEGFAULT.findall(m.console)
    assert len(faults) == 1, m.console.decode(errors="replace")
    pid, name, va, c, _pc = faults[0]
    assert (pid, name, int(c)) == (b"2", b"segv", cause) and where(int(va, 16))
    assert b"segv: survived" not in m.console
    assert b"init: exited with status -1" in m.console   # init outlived it
    assert m.exit_status == 255


def test_init_runs_what_init_names(kernel):
    m = boot(kernel, append="init=hello a bb")
    assert m.exit_status == 0
    assert b"boot: starting init hello a bb" in m.console
    assert b"hello: hello from pid 2 a bb" in m.console
    m = boot(kernel, append="init=nosuch")
    assert m.exit_status == 127 and b"init: cannot run 'nosuch'" in m.console


def test_boot_parameters_unknown_and_bad_are_reported(kernel):
    m = boot(kernel, append="colour=blue verbose tick_us=fast min_free_kb=1024 init=hello")
    out = m.console
    assert m.exit_status == 0
    assert b"param: unknown key 'colour' (value 'blue'), ignored" in out
    assert b"param: unknown parameter 'verbose', ignored" in out
    assert b"param: bad value 'fast' for tick_us" in out
    assert kstats.collect(m)["memory"]["watermarks"]["min"] == 256   # 1024 KiB


@pytest.mark.parametrize("ram", [4 << 20, 64 << 20])
def test_demo_runs_in_small_and_large_ram(kernel, ram):
    m = boot(kernel, ram_size=ram)
    assert m.exit_status == 0, m.console.decode(errors="replace")
    k = kstats.collect(m)
    assert k["memory"]["pages_total"] == ram // 4096
    mn = k["memory"]["watermarks"]["min"]
    boot_kept = ("reserved", "image", "kimage", "frametable")   # never freed at boot
    lowmem_kb = (k["memory"]["pages_total"]
                 - sum(k["memory"]["pages_by_use"][u] for u in boot_kept)) * 4
    assert mn * 4 <= max(128, min(65536, int((lowmem_kb * 16) ** 0.5)))


def test_tick_parameter_changes_preemption(kernel):
    fast = kstats.collect(boot(kernel, append="tick_us=100 init=forktest workers=2 work=100000"))
    slow = kstats.collect(boot(kernel, append="init=forktest workers=2 work=100000"))
    assert fast["preemptions"] > slow["preemptions"]


# -- determinism -------------------------------------------------------------------

def _figures(m: Machine) -> dict:
    st = report.collect(m)
    # Wall-clock figures vary by nature; QEMU also resizes its TLB on
    # wall-clock windows, so over a long run the fill count follows host speed.
    for key in report.HOST_DEPENDENT:
        st.pop(key)
    st["kernel"] = kstats.collect(m)
    return st


def test_same_flags_same_run(kernel):
    a = boot(kernel, append="test", max_insns=MAX_INSNS)
    b = boot(kernel, append="test", max_insns=MAX_INSNS)
    assert a.console == b.console
    assert _figures(a) == _figures(b)


@pytest.mark.skipif(len(IMPLS) < 2, reason="EMU_PURE=1: only the pure twins are loaded")
def test_mmu_twins_run_the_kernel_tests_identically(ktest_boot):
    a, b = ktest_boot("python"), ktest_boot("fast")
    assert a.console == b.console
    fa, fb = _figures(a), _figures(b)
    fa.pop("mmu"), fb.pop("mmu")
    assert fa == fb


# -- the host's reading of the kernel's counters ------------------------------------

def _defines(path, prefix: str) -> dict[str, int]:
    text = path.read_text()
    return {m.group(1): int(m.group(2), 0)
            for m in re.finditer(rf"^#define\s+({prefix}\w*)\s+(0x[0-9A-Fa-f]+|\d+)U?L?\b",
                                 text, re.M)}


def test_kstats_tables_match_the_headers():
    sys_defs = _defines(KERNEL_SRC / "syscall.h", "SYS_")
    assert {v: k[4:] for k, v in sys_defs.items()} == kstats.SYSCALL_NAMES
    assert _defines(KERNEL_SRC / "syscall.h", "NSYSCALL")["NSYSCALL"] == kstats.NSYSCALL
    hdr = KERNEL_SRC / "kstats.h"
    faults = {"FAULT_ZERO": "demand_zero", "FAULT_IMAGE": "image", "FAULT_PROT": "protection",
              "FAULT_BAD": "bad", "FAULT_SPURIOUS": "spurious", "FAULT_SWAPIN": "swap_in",
              "FAULT_SWAPCACHE": "swap_cache"}
    assert {v: faults[k] for k, v in _defines(hdr, "FAULT_").items()} == kstats.FAULT_KINDS
    uses = {"FRAME_FREE": "free", "FRAME_RESERVED": "reserved", "FRAME_KERNEL": "kernel",
            "FRAME_PTABLE": "pagetable", "FRAME_KSTACK": "kstack", "FRAME_KMALLOC": "kmalloc",
            "FRAME_USER": "user", "FRAME_IMAGE": "image",
            "FRAME_NETBUF": "netbuf", "FRAME_KIMAGE": "kimage", "FRAME_FTABLE": "frametable",
            "FRAME_SWAPMAP": "swapmap"}
    assert {v: uses[k] for k, v in _defines(hdr, "FRAME_").items()} == kstats.FRAME_USES
    assert _defines(hdr, "NFAULTKIND")["NFAULTKIND"] == kstats.NFAULTKIND
    assert _defines(hdr, "NFRAMEUSE")["NFRAMEUSE"] == kstats.NFRAMEUSE
    assert _defines(hdr, "NRESERVE")["NRESERVE"] == kstats.NRESERVE
    reserves = {"RESERVE_SWAP_IO": "swap_io", "RESERVE_AOE_TX": "aoe_tx",
                "RESERVE_AOE_RX": "aoe_rx"}
    assert {v: reserves[k] for k, v in _defines(hdr, "RESERVE_").items()} == \
        kstats.RESERVE_NAMES
    assert _defines(hdr, "KSTATS_")["KSTATS_MAGIC"] == kstats.MAGIC
    assert _defines(hdr, "KSTATS_")["KSTATS_VERSION"] == kstats.VERSION
    body = re.search(r"struct kstats \{(.*?)\};", hdr.read_text(), re.S).group(1)
    fields = []
    for decl in re.findall(r"uint64 ([^;]+);", body):
        for part in decl.split(","):
            m = re.fullmatch(r"\s*(\w+)(?:\[(\w+)\])?\s*", part)
            fields.append((m.group(1), getattr(kstats, m.group(2)) if m.group(2) else 1))
    assert tuple(fields) == kstats.LAYOUT


@pytest.mark.parametrize("mmu", IMPLS)
def test_kernel_counters_agree_with_the_machine(kernel, mmu):
    """Every U-mode page fault reaches vmfault, every U-mode ecall is a
    system call, every timer interrupt a tick: the two sides must agree.
    (The default demo: the in-kernel tests also call vmfault directly.)"""
    m = boot(kernel, mmu=mmu)
    st, k = report.collect(m), kstats.collect(m)
    user_faults = sum(st["traps"].get(f"{a}_page_fault", 0) for a in ("fetch", "load", "store"))
    assert k["page_faults_total"] == user_faults + k["copy_fills"]
    assert k["copy_fills"] > 0   # argv pages at least
    assert k["syscalls_total"] == st["traps"]["ecall_u"]
    assert k["timer_ticks"] == st["interrupts"]["timer"]
    used = sum(k["memory"]["pages_by_use"].values())
    assert used == k["memory"]["pages_total"] == st["ram_bytes"] // 4096


def test_kstats_collect_keys_and_rows(ktest_boot):
    k = kstats.collect(ktest_boot(IMPLS[0]))
    assert set(k) == {"context_switches", "preemptions", "processes_created", "timer_ticks",
                      "syscalls", "syscalls_unknown", "syscalls_total", "page_faults",
                      "page_faults_total", "copy_fills", "segfaults", "oom_kills",
                      "alloc_failures", "memory", "major_faults", "minor_faults", "swap",
                      "reclaim", "aoe", "net", "reserve", "reserve_allocs",
                      "pfmemalloc_drop", "tasks_blocked", "aoe_inflight", "reserve_denied",
                      "swapoff", "prefetch"}
    assert "throttled" in k["reclaim"] and "free_low" in k["memory"]
    assert {n: set(r) for n, r in k["reserve"].items()} == {
        n: {"limit", "usage", "peak"} for n in ("swap_io", "aoe_tx", "aoe_rx")}
    assert sum(r["limit"] for r in k["reserve"].values()) == k["memory"]["watermarks"]["min"]
    assert set(k["swap"]) >= {"swap_outs", "swap_ins", "swap_cache_hits", "bytes_out",
                              "bytes_in"}
    assert set(k["aoe"]) >= {"requests", "retransmits", "stale_replies", "unknown_replies",
                             "srtt_ns", "rto_ns", "window"}
    assert set(k["net"]["drops"]) == {"unknown_ethertype", "runt", "too_long", "no_buffer",
                                      "rx_overrun"}
    assert list(k["syscalls"]) == list(kstats.SYSCALL_NAMES.values())
    assert list(k["page_faults"]) == list(kstats.FAULT_KINDS.values())
    assert k["syscalls_unknown"] == 2 and k["segfaults"] == 5 and k["oom_kills"] == 1
    # (the net_drops kernel test feeds frames to the net core: its row shows;
    # the reserve tests take reserve pages: so does theirs; aoe_pool swaps)
    assert [r[0] for r in report.kernel_rows(k)] == [
        "processes", "system calls", "kernel faults", "free memory", "swap", "AoE", "reserves",
        "NIC driver"]
    assert k["reserve_allocs"] > 0 and k["pfmemalloc_drop"] == 1
    assert all(r["usage"] == 0 and r["peak"] > 0 for n, r in k["reserve"].items()
               if n in ("swap_io", "aoe_tx", "aoe_rx"))
    assert report.kernel_rows({}) == []


def test_kstats_collect_is_empty_for_other_guests(asm):
    path = asm("""
        .section .text.entry
        .globl _start
        _start:
            li a7, 0x53525354
            li a6, 0
            li a0, 0
            li a1, 0
            ecall
        1:  j 1b
    """)
    m = boot(path, max_insns=10_000)
    assert m.exit_status == 0 and kstats.collect(m) == {}


@pytest.mark.parametrize("ram", [4 << 20, 64 << 20])
def test_the_kernel_accounts_its_own_memory_by_kind(kernel, ram):
    """meminfo's "Pages by use" and kstats agree page for page and add up to
    RAM; the frame table is one struct frame (32 bytes) per page - Rik van
    Riel's "under 1%" of the structures that grow with memory."""
    m = boot(kernel, ram_size=ram, append="init=meminfo")
    assert m.exit_status == 0, m.console.decode(errors="replace")[-1500:]
    uses = kstats.collect(m)["memory"]["pages_by_use"]
    total = ram // 4096
    assert sum(uses.values()) == total
    text = m.console.decode().replace("\r\n", "\n")
    printed = dict(re.findall(r"^  ([a-z ,]+?)\s+(\d+)\s+\d+\.\d\d$", text, re.M))
    names = {"frame table": "frametable", "page tables": "pagetable", "kernel heap": "kmalloc",
             "kernel stacks": "kstack", "network buffers": "netbuf", "swap map": "swapmap",
             "kernel image": "kimage", "program images": "image",
             "firmware, reserved": "reserved", "kernel, other": "kernel", "user": "user",
             "free": "free"}
    seen = {names[k]: int(v) for k, v in printed.items()}
    assert set(seen) == set(uses) and sum(seen.values()) == total
    # what meminfo saw while it ran, and what kstats holds at the end, agree
    # on everything no process owns
    for kind in ("frametable", "kimage", "image", "reserved", "swapmap", "netbuf"):
        assert seen[kind] == uses[kind], kind
    assert uses["frametable"] == -(-total * 32 // 4096)
    assert uses["frametable"] / total < 0.01
    assert uses["kimage"] > 0 and uses["swapmap"] > 0 and uses["netbuf"] > 0
    assert uses["reserved"] >= (0x20_0000 >> 12)          # the firmware's 2 MiB at least
