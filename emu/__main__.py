"""`python -m emu` is the `emu` command."""

from emu.cli import main

raise SystemExit(main())
