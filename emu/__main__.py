"""`python -m emu` is the `emu` command."""

from emu.cli.main import main

raise SystemExit(main())
