"""The in-memory backing store: every sector written reads back bit-identical,
never-written sectors read as zeros, bad ranges are refused - against a flat
bytearray model, with writes and reads of any alignment and length."""

from __future__ import annotations

import random

import pytest

from emu.net.store import SECTOR, MemoryStore


@pytest.mark.parametrize("seed", range(4))
def test_memory_store_matches_a_flat_disk(seed: int) -> None:
    rng = random.Random(seed)
    nsect = rng.choice([1, 7, 8, 9, 100, 4096])
    store, model, written = MemoryStore(nsect), bytearray(nsect * SECTOR), set()
    for _ in range(400):
        lba = rng.randrange(nsect)
        count = rng.randrange(0, min(40, nsect - lba) + 1)
        if rng.random() < 0.5:
            data = rng.randbytes(count * SECTOR)
            store.write(lba, data if rng.random() < 0.5 else memoryview(data))
            model[lba * SECTOR:(lba + count) * SECTOR] = data
            written.update(range(lba, lba + count))
        else:
            got = store.read(lba, count)
            assert type(got) is bytes
            assert got == bytes(model[lba * SECTOR:(lba + count) * SECTOR])
    assert store.read(0, nsect) == bytes(model)
    assert store.used_sectors == len(written)


def test_memory_store_refuses_bad_ranges_and_partial_sectors() -> None:
    store = MemoryStore(16)
    with pytest.raises(ValueError, match="outside a 16-sector device"):
        store.read(10, 7)
    with pytest.raises(ValueError, match="outside a 16-sector device"):
        store.write(15, bytes(2 * SECTOR))
    with pytest.raises(ValueError, match="not whole sectors"):
        store.write(0, bytes(100))
    with pytest.raises(ValueError, match="at least one sector"):
        MemoryStore(0)
    assert store.used_sectors == 0 and store.read(0, 16) == bytes(16 * SECTOR)
