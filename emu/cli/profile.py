"""`emu profile [--rate HZ] [--raw FILE] [--json FILE] -- COMMAND...`: where
an emu run's host time goes, by layer (emu/tools/hostprofile.py), e.g.
`emu profile -- run -kernel build/linux/Image -initrd build/linux/initrd.gz`.

Layer: face.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_USAGE = 2     # as emu.cli.main's (which imports this module)


def add_command(sub: Any) -> argparse.ArgumentParser:
    """Add `emu profile` to the subparsers `sub`; returns its parser."""
    p = sub.add_parser("profile", help="sample an emu run with py-spy (native stacks) and "
                       "show where the host's time went, by layer",
                       description="Run `emu COMMAND...` under py-spy --native and sort every "
                       "sample into a layer: guest code, unicorn's runtime, translation, emu's "
                       "C hooks, Python callbacks, the run loop, start-up.")
    p.add_argument("--rate", type=int, default=100, metavar="HZ",
                   help="samples per second (default: %(default)s; each one pauses the run)")
    p.add_argument("--raw", metavar="FILE",
                   help="keep the samples (collapsed stacks, for flamegraph.pl) in FILE")
    p.add_argument("--json", metavar="FILE", help="write the breakdown as JSON to FILE")
    p.add_argument("--show-output", action="store_true",
                   help="let the profiled run print its console and report")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                   help="the emu command to profile, after `--` (e.g. -- run -kernel K)")
    p.set_defaults(func=cmd_profile)
    return p


def cmd_profile(args: argparse.Namespace) -> int:
    """Profile the run, print the table; the exit status is the run's."""
    from emu.tools import hostprofile

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    problem = None
    if not command:
        problem = "name the emu command to profile after `--` (e.g. emu profile -- run -kernel K)"
    elif command[0] == "profile":
        problem = "cannot profile `emu profile`"
    elif args.rate <= 0 or args.rate > 10_000:
        problem = f"--rate must be 1..10000 samples a second, not {args.rate}"
    if problem:
        print(f"emu profile: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result, status = hostprofile.profile(command, args.rate, raw_path=args.raw,
                                             quiet=not args.show_output)
    except hostprofile.ProfileError as exc:
        print(f"emu profile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from rich.console import Console
    title = (f"emu {' '.join(command)}: {result.total:,} samples at {args.rate} Hz, "
             f"{result.wall_s:.1f} s wall under sampling, exit {status}")
    Console(width=160).print(hostprofile.table(result, title))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_json(), f, indent=1)
    return status
