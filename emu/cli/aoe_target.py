"""`emu aoe-target IFACE FILE --shelf S --slot N`: the vblade-compatible
AoE target on a real interface (emu/tools/aoe_server.py).

Layer: face.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_command(sub: Any) -> argparse.ArgumentParser:
    """Add `emu aoe-target` to the subparsers `sub`; returns its parser."""
    p = sub.add_parser("aoe-target", help="serve a file as an AoE target on a real interface "
                       "(vblade-compatible, root)")
    p.add_argument("iface", metavar="IFACE", help="network interface, e.g. eth0 or a veth")
    p.add_argument("file", metavar="FILE", help="backing file or block device")
    p.add_argument("--shelf", type=int, required=True, help="AoE shelf (major), 0..65534")
    p.add_argument("--slot", type=int, required=True, help="AoE slot (minor), 0..254")
    p.add_argument("--mtu", type=int, help="MTU for the sectors per frame "
                   "(default: the interface's)")
    p.add_argument("--bufcnt", type=int, default=16,
                   help="advertised queue depth (default: %(default)s)")
    p.add_argument("-r", "--readonly", action="store_true", help="export read-only")
    p.set_defaults(func=cmd_aoe_target)
    return p


def cmd_aoe_target(args: argparse.Namespace) -> int:
    """Run the vblade-compatible target until Ctrl-C. Returns the exit status."""
    from emu.tools.aoe_server import serve

    return serve(args.iface, args.file, args.shelf, args.slot, args.mtu,
                 readonly=args.readonly, bufcnt=args.bufcnt)
