"""SBI calls: base extension, timer, console, shutdown reasons."""

from __future__ import annotations

from emu.machine import firmware as fw


def _fw():
    log = {"out": bytearray(), "timer": [], "status": []}
    inq = [ord("k")]
    mem = bytearray(64)
    f = fw.Firmware(
        console_write=log["out"].extend,
        console_read=lambda: inq.pop(0) if inq else None,
        set_timer=log["timer"].append,
        read_phys=lambda pa, n: bytes(mem[pa:pa + n]) if pa + n <= len(mem) else None,
        write_phys=lambda pa, d: (mem.__setitem__(slice(pa, pa + len(d)), d), True)[1]
        if pa + len(d) <= len(mem) else False,
        shutdown=log["status"].append)
    return f, log, mem


def test_base_extension():
    f, _, _ = _fw()
    assert f.call(fw.EXT_BASE, 0, [0] * 6) == (0, 2 << 24)
    assert f.call(fw.EXT_BASE, 3, [fw.EXT_TIME, 0, 0, 0, 0, 0]) == (0, 1)
    assert f.call(fw.EXT_BASE, 3, [0x12345, 0, 0, 0, 0, 0]) == (0, 0)
    assert f.call(fw.EXT_BASE, 99, [0] * 6)[0] == fw.SBI_ERR_NOT_SUPPORTED & (2**64 - 1)


def test_console_and_timer():
    f, log, mem = _fw()
    f.call(fw.LEGACY_PUTCHAR, 0, [ord("h"), 0, 0, 0, 0, 0])
    mem[8:11] = b"abc"
    assert f.call(fw.EXT_DBCN, 0, [3, 8, 0, 0, 0, 0]) == (0, 3)
    assert f.call(fw.EXT_DBCN, 2, [ord("!"), 0, 0, 0, 0, 0]) == (0, 0)
    assert log["out"] == b"habc!"
    assert f.call(fw.EXT_DBCN, 0, [3, 1 << 40, 0, 0, 0, 0])[0] != 0   # outside RAM
    assert f.call(fw.EXT_DBCN, 1, [4, 16, 0, 0, 0, 0]) == (0, 1)
    assert mem[16] == ord("k")
    assert f.call(fw.LEGACY_GETCHAR, 0, [0] * 6)[0] == 2**64 - 1        # -1: nothing
    f.call(fw.EXT_TIME, 0, [12345, 0, 0, 0, 0, 0])
    assert log["timer"] == [12345]


def test_shutdown_reasons():
    f, log, _ = _fw()
    f.call(fw.EXT_SRST, 0, [0, 0, 0, 0, 0, 0])
    f.call(fw.EXT_SRST, 0, [0, 1, 0, 0, 0, 0])
    f.call(fw.EXT_SRST, 0, [0, 0xF000_0005, 0, 0, 0, 0])
    assert log["status"] == [0, 1, 5]
    assert f.call(fw.EXT_SRST, 0, [1, 0, 0, 0, 0, 0])[0] != 0          # reboot unsupported
    assert f.call(0x99999, 0, [0] * 6)[0] == fw.SBI_ERR_NOT_SUPPORTED & (2**64 - 1)


def test_rfence_calls_the_flushes():
    f, _, _ = _fw()
    seen = []
    f.fence_i = lambda: seen.append("i")
    f.sfence_vma = lambda: seen.append("vma")
    assert f.call(fw.EXT_RFENCE, 0, [0] * 6) == (0, 0)
    assert f.call(fw.EXT_RFENCE, 1, [0] * 6) == (0, 0)
    assert f.call(fw.EXT_RFENCE, 9, [0] * 6)[0] != 0
    assert seen == ["i", "vma"]
    assert f.call(fw.EXT_BASE, 3, [fw.EXT_RFENCE, 0, 0, 0, 0, 0]) == (0, 1)


def test_ipi_and_hsm_for_the_one_hart():
    f, _, _ = _fw()
    ipis = []
    f.send_ipi = lambda: ipis.append(1)
    err = fw.SBI_ERR_INVALID_PARAM & (2**64 - 1)
    assert f.call(fw.EXT_IPI, 0, [1, 0, 0, 0, 0, 0]) == (0, 0)            # hart 0
    assert f.call(fw.EXT_IPI, 0, [0, fw.ALL_HARTS, 0, 0, 0, 0]) == (0, 0)  # every hart
    assert f.call(fw.EXT_IPI, 0, [0, 0, 0, 0, 0, 0]) == (0, 0)            # nobody
    assert f.call(fw.EXT_IPI, 0, [2, 0, 0, 0, 0, 0])[0] == err            # hart 1: none
    assert f.call(fw.EXT_IPI, 0, [1, 1, 0, 0, 0, 0])[0] == err
    assert len(ipis) == 2
    assert f.call(fw.EXT_HSM, 2, [0] * 6) == (0, fw.HSM_STARTED)
    assert f.call(fw.EXT_HSM, 2, [1, 0, 0, 0, 0, 0])[0] == err
    assert f.call(fw.EXT_HSM, 0, [0, 0x8020_0000, 0, 0, 0, 0])[0] == \
        fw.SBI_ERR_ALREADY_AVAILABLE & (2**64 - 1)
    assert f.call(fw.EXT_HSM, 1, [0] * 6)[0] == fw.SBI_ERR_FAILED & (2**64 - 1)
    assert f.call(fw.EXT_HSM, 3, [0] * 6)[0] == fw.SBI_ERR_NOT_SUPPORTED & (2**64 - 1)
    for ext in (fw.EXT_IPI, fw.EXT_HSM):
        assert f.call(fw.EXT_BASE, 3, [ext, 0, 0, 0, 0, 0]) == (0, 1)
