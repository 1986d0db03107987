"""Build the Linux guest bundle (`make linux-guest`; docs/linux.md): Debian
trixie's riscv64 kernel and a busybox initramfs that loads the virtio,
aoe and nfs modules and runs memhog.

    build.py [OUT]        (default build/linux)

1. Fetch the packages `linux-image-riscv64` and `busybox-static` (with their
   hard dependencies) from Debian's archive with `mmdebstrap
   --variant=extract` into OUT/debian (once: delete it to fetch again).
2. OUT/Image: the kernel (Debian ships it as an EFI-stub PE that is also a
   RISC-V Linux Image, which `-kernel` takes on QEMU and on emu).
3. OUT/initrd.gz: a newc cpio (gzip), written here with fixed owners and
   times so the same inputs give the same bytes: busybox, /init
   (guest/linux/init), the modules of MODULES and everything their
   `depends=` needs, decompressed, with lib/modules/modules.order listing
   them in load order, and memhog (guest/linux/memhog.c, built static with
   Debian's riscv64-linux-gnu-gcc), and aoeswap (guest/linux/aoeswap:
   swap on an AoE target with Linux's aoe driver, then memhog), nfsswap
   (guest/linux/nfsswap: swap to a file over NFS, then memhog) and vmwatch
   (guest/linux/vmwatch.c: a watcher locked in memory that reports when
   swap stops moving).

Exit status 0, or 1 with one line on what is missing or failed.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

from elftools.elf.elffile import ELFFile

SUITE = "trixie"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = ("linux-image-riscv64", "busybox-static")
# Modules to load (with their arguments), in this order after their
# dependencies: the virtio transport and devices, AoE, NFS (v3).
MODULES = (("virtio_mmio", ""), ("virtio_blk", ""), ("virtio_net", ""),
           ("aoe", "aoe_iflist=eth0"), ("nfsv3", ""))
HERE = Path(__file__).resolve().parent


class BuildError(Exception):
    """What went wrong, in one line."""


def fetch(out: Path) -> Path:
    """The extracted packages (fetched on first use)."""
    root = out / "debian"
    if (root / "boot").is_dir():
        return root
    if not shutil.which("mmdebstrap"):
        raise BuildError("mmdebstrap is missing (Debian package mmdebstrap)")
    tmp = out / "debian.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    r = subprocess.run(["mmdebstrap", "--variant=extract", "--architectures=riscv64",
                        "--include=" + ",".join(PACKAGES), SUITE, str(tmp), MIRROR],
                       capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"mmdebstrap failed: {last}")
    tmp.rename(root)
    return root


def modinfo(ko: bytes) -> dict[str, str]:
    """The key=value pairs of a module's .modinfo section."""
    sec = ELFFile(io.BytesIO(ko)).get_section_by_name(".modinfo")
    if sec is None:
        return {}
    out: dict[str, str] = {}
    for entry in sec.data().split(b"\0"):
        key, _, value = entry.decode(errors="replace").partition("=")
        if key and key not in out:
            out[key] = value
    return out


def modules(root: Path) -> tuple[str, list[tuple[str, bytes, str]]]:
    """The kernel version and [(name, decompressed .ko, args)] in load
    order (every dependency before what needs it)."""
    versions = sorted(p.name for p in (root / "usr/lib/modules").iterdir())
    if len(versions) != 1:
        raise BuildError(f"expected one kernel in the packages, found {versions}")
    kver = versions[0]
    index = {p.name.removesuffix(".ko.xz").replace("-", "_"): p
             for p in (root / "usr/lib/modules" / kver).rglob("*.ko.xz")}
    loaded: dict[str, tuple[str, bytes, str]] = {}

    def load(name: str, args: str, chain: tuple[str, ...]) -> None:
        if name in loaded:
            return
        if name in chain:
            raise BuildError(f"module dependency loop: {' -> '.join(chain + (name,))}")
        if name not in index:
            raise BuildError(f"module {name} is not in linux-image {kver}")
        ko = lzma.decompress(index[name].read_bytes())
        for dep in filter(None, modinfo(ko).get("depends", "").split(",")):
            load(dep.replace("-", "_"), "", chain + (name,))
        loaded[name] = (name, ko, args)

    for name, args in MODULES:
        load(name, args, ())
    return kver, list(loaded.values())


def program(out: Path, name: str) -> bytes:
    """guest/linux/NAME.c, built static (memhog, vmwatch)."""
    cc = shutil.which("riscv64-linux-gnu-gcc")
    if not cc:
        raise BuildError("riscv64-linux-gnu-gcc is missing (Debian package gcc-riscv64-linux-gnu)")
    exe = out / name
    r = subprocess.run([cc, "-static", "-O2", "-Wall", "-Werror", "-o", str(exe),
                        str(HERE / f"{name}.c")], capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"{name} did not build: {r.stderr.strip().splitlines()[-1]}")
    return exe.read_bytes()


def cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) - directories have mode
    0o40755 and no data - owned by root, time 0."""
    buf = io.BytesIO()

    def put(name: str, mode: int, data: bytes, ino: int) -> None:
        nb = name.encode() + b"\0"
        head = (f"070701{ino:08x}{mode:08x}{0:08x}{0:08x}{1:08x}{0:08x}{len(data):08x}"
                f"{0:08x}{0:08x}{0:08x}{0:08x}{len(nb):08x}{0:08x}").encode()
        buf.write(head + nb)
        buf.write(b"\0" * (-(len(head) + len(nb)) % 4))
        buf.write(data)
        buf.write(b"\0" * (-len(data) % 4))

    for ino, (name, mode, data) in enumerate(entries, 1):
        put(name, mode, data, ino)
    put("TRAILER!!!", 0, b"", 0)
    return buf.getvalue()


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    root = fetch(out)
    kver, mods = modules(root)
    shutil.copyfile(root / "boot" / f"vmlinux-{kver}", out / "Image")
    d, x, f = 0o40755, 0o100755, 0o100644
    entries = [(p, d, b"") for p in ("bin", "sbin", "dev", "proc", "sys", "tmp", "mnt",
                                     "lib", "lib/modules")]
    entries += [("init", x, (HERE / "init").read_bytes()),
                ("bin/busybox", x, (root / "usr/bin/busybox").read_bytes()),
                ("bin/memhog", x, program(out, "memhog")),
                ("bin/vmwatch", x, program(out, "vmwatch")),
                ("bin/aoeswap", x, (HERE / "aoeswap").read_bytes()),
                ("bin/nfsswap", x, (HERE / "nfsswap").read_bytes())]
    entries += [(f"lib/modules/{name}.ko", f, ko) for name, ko, _ in mods]
    order = "".join(f"{name} {args}".rstrip() + "\n" for name, _, args in mods)
    entries.append(("lib/modules/modules.order", f, order.encode()))
    with open(out / "initrd.gz", "wb") as fh:
        with gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
            gz.write(cpio(entries))
    (out / "kernel-version").write_text(kver + "\n")
    print(f"linux-guest: {out}/Image (linux {kver}), {out}/initrd.gz "
          f"({(out / 'initrd.gz').stat().st_size:,} bytes; modules: "
          f"{', '.join(n for n, _, _ in mods)})")


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "build/linux")
    try:
        build(out)
    except BuildError as e:
        print(f"linux-guest: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
