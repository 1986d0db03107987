"""Command-line wiring of the network, for emu/cli.py to call.

    add_net_flags(parser)                  --net --noise --pcap --target --target-service
    net_config_from_args(args, seed, mtu)  -> NetConfig (validated; ConfigError)
    add_aoe_target_command(subparsers)     the `emu aoe-target IFACE FILE --shelf S --slot N`
                                           subcommand (set_defaults(func=cmd_aoe_target))
"""

from __future__ import annotations

import argparse
from typing import Any

from emu.net.network import NetConfig


def add_net_flags(p: argparse.ArgumentParser) -> None:
    """Add the network flags of `emu run` / `emu debug`."""
    g = p.add_argument_group("network")
    g.add_argument("--net", metavar="SPEC", default=None,
                   help='netem impairments of the guest\'s link, both directions, e.g. '
                   '"loss 5%% delay 200us 50us duplicate 1%% reorder 10%% corrupt 0.1%%" '
                   "(reproducible with --seed)")
    g.add_argument("--noise", metavar="RATE[,SIZE]",
                   help="send junk frames to the guest: RATE frames/s (2000, 20kpps) or a "
                   "bit rate (5mbit); SIZE bytes, default 60")
    g.add_argument("--pcap", metavar="FILE", help="capture the segment (classic pcap, "
                   "virtual-time stamps)")
    g.add_argument("--target", metavar="SPEC", action="append",
                   help="AoE target: mem:SIZE[@S.N], file:PATH[@S.N] (embedded) or "
                   "iface:NAME (bridge to a real interface, not deterministic); repeatable; "
                   "default mem:64M")
    g.add_argument("--target-service", metavar="TIME", default=None,
                   help="embedded targets' service time per request, e.g. 20us (default 0us)")


def net_config_from_args(args: argparse.Namespace, *, seed: int, mtu: int) -> NetConfig:
    """Build and validate a NetConfig from the flags. Raises ConfigError (one line)."""
    cfg = NetConfig(net=args.net or "", noise=args.noise, pcap=args.pcap,
                    targets=tuple(args.target) if args.target else ("mem:64M",),
                    target_service=args.target_service or "0us", seed=seed, mtu=mtu)
    cfg.validate()
    return cfg


def cmd_aoe_target(args: argparse.Namespace) -> int:
    """Run the vblade-compatible target until Ctrl-C. Returns the exit status."""
    from emu.net.aoe_server import serve

    return serve(args.iface, args.file, args.shelf, args.slot, args.mtu,
                 readonly=args.readonly, bufcnt=args.bufcnt)


def add_aoe_target_command(sub: Any) -> argparse.ArgumentParser:
    """Add `emu aoe-target` to the subparsers `sub`; returns its parser."""
    p = sub.add_parser("aoe-target", help="serve a file as an AoE target on a real interface "
                       "(vblade-compatible, root)")
    p.add_argument("iface", metavar="IFACE", help="network interface, e.g. eth0 or a veth")
    p.add_argument("file", metavar="FILE", help="backing file or block device")
    p.add_argument("--shelf", type=int, required=True, help="AoE shelf (major), 0..65534")
    p.add_argument("--slot", type=int, required=True, help="AoE slot (minor), 0..254")
    p.add_argument("--mtu", type=int, help="MTU for the sectors per frame "
                   "(default: the interface's)")
    p.add_argument("--bufcnt", type=int, default=16, help="advertised queue depth (default 16)")
    p.add_argument("-r", "--readonly", action="store_true", help="export read-only")
    p.set_defaults(func=cmd_aoe_target)
    return p
