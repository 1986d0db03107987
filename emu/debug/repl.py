"""The `emu debug` command loop: read a line, run it through the shared
command table, print the result.

gdb habits carry over: `(emu)` prompt, an empty line repeats the previous
command as gdb repeats it (`x` continues after what it showed; `display`
and `delete` are not repeated), unique prefixes and short aliases (`c`,
`si`, `n`, `i r`, `x/8xg`), and on a terminal readline's history
(~/.emu_debug_history, or $EMU_DEBUG_HISTORY) and tab completion of
commands, `info` topics, symbols and `$registers` (emu/debug/complete.py).
Ctrl-C interrupts a running machine at the next slice. Scripts can pipe
commands on stdin: each command is echoed after the prompt so the
transcript reads like a session.

With a GDB stub listening (`emu debug -s`), the loop also watches the
listening socket: a gdb that connects takes over the session until it
detaches, then the prompt returns with the machine where gdb left it.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

import os
import select
import signal
import sys
from typing import IO

from emu.debug import complete
from emu.debug.commands import INFO, TABLE, CommandError, Session, SessionEnd, lookup
from emu.debug.context import Style
from emu.debug.control import Controller
from emu.debug.gdbcmds import display_all

PROMPT = "(emu) "


def history_path() -> str:
    """Where readline history is kept: $EMU_DEBUG_HISTORY or ~/.emu_debug_history."""
    return os.environ.get("EMU_DEBUG_HISTORY") or \
        os.path.join(os.path.expanduser("~"), ".emu_debug_history")


class ConsoleWriter:
    """The guest console as the REPL shows it: bytes decoded into the text
    stream, remembering whether the last output ended a line (so a context
    view never starts in the middle of a guest line)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.at_line_start = True

    def write(self, data: bytes) -> int:
        """Write guest console bytes. Returns len(data)."""
        if data:
            self.out.write(data.decode("utf-8", "replace"))
            self.out.flush()
            self.at_line_start = data.endswith(b"\n")
        return len(data)

    def flush(self) -> None:
        """Flush the text stream."""
        self.out.flush()

    def newline_if_needed(self) -> None:
        """End a pending guest line before debugger output."""
        if not self.at_line_start:
            self.out.write("\n")
            self.at_line_start = True


class Repl:
    """One interactive or scripted debugging session on a Controller."""

    def __init__(self, ctl: Controller, console: ConsoleWriter, stdin: IO[str] = sys.stdin,
                 stdout: IO[str] = sys.stdout, gdb=None) -> None:
        self.ctl = ctl
        self.console = console
        self.stdin = stdin
        self.stdout = stdout
        self.gdb = gdb
        self.interactive = stdin.isatty()
        self.session = Session(ctl, Style(color=stdout.isatty()))
        self.last = ""

    def say(self, text: str) -> None:
        """Print debugger output on its own lines."""
        if text:
            self.console.newline_if_needed()
            self.stdout.write(text.rstrip("\n") + "\n")
            self.stdout.flush()

    def _readline(self) -> str | None:
        """Next command line, or None at end of input. Hands the session to
        gdb when one connects while we wait."""
        while self.gdb is not None:
            if not self.interactive and self.stdin_ready_without_select():
                break
            try:
                ready, _, _ = select.select([self.stdin, self.gdb.listener], [], [])
            except (ValueError, OSError):
                break
            if self.gdb.listener in ready:
                self.say("gdb connected: the session belongs to gdb until it detaches")
                self.gdb.serve_one()
                self.say("gdb detached; back to the (emu) prompt")
                self.say(self.session.show_stop(self.ctl.last_stop))
                self.say(display_all(self.session.gdb))
                continue
            break
        if self.interactive:
            try:
                return input(PROMPT)
            except EOFError:
                return None
        line = self.stdin.readline()
        if not line:
            return None
        line = line.rstrip("\n")
        self.say(f"{PROMPT}{line}")
        return line

    def stdin_ready_without_select(self) -> bool:
        """True for stdin objects select() cannot watch (e.g. StringIO)."""
        try:
            self.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            return True
        return False

    def run(self) -> int:
        """Loop until `quit` or end of input. Returns the process exit status."""
        if self.interactive:
            self._init_history()
        m = self.ctl.machine
        self.say(f"emu debug: {m.image.path}, {m.config.ram_size >> 20} MiB RAM; stopped at "
                 f"reset (pc 0x{m.cpu.pc:x}); {self.ctl.symbols_note}. `help` lists commands.")
        while True:
            try:
                line = self._readline()
            except KeyboardInterrupt:
                self.say("^C")
                continue
            if line is None:
                break
            if not line.strip():
                line = self.last
                if not line:
                    continue
            if line.lstrip().startswith("#"):
                continue
            self.last = ""
            try:
                out = self._execute(line)
                self.last = self.session.repeat
            except SessionEnd:
                break
            except CommandError as exc:
                out = (exc.partial + "\n" if exc.partial else "") + f"error: {exc}"
                self.last = line
            except Exception as exc:  # noqa: BLE001 - a debugger bug must not end the session
                out = f"error: internal debugger error: {exc!r}"
            self.say(out)
        if self.interactive:
            self._save_history()
        return 0

    def _execute(self, line: str) -> str:
        """Run one command with Ctrl-C mapped to a controller interrupt."""
        previous = None
        try:
            previous = signal.signal(signal.SIGINT, lambda *_: self.ctl.stop_flag())
        except ValueError:   # not the main thread: no handler, no Ctrl-C
            pass
        try:
            return self.session.execute(line)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def complete_line(self, line: str) -> list[str]:
        """Completions of the last word of `line` (see emu/debug/complete.py)."""
        def canonical(word: str) -> str | None:
            try:
                return lookup(word).name
            except CommandError:
                return None
        return complete.candidates(
            line, [(c.name, c.aliases) for c in TABLE], [(t.name, t.aliases) for t in INFO],
            lambda: self.ctl.symbols.by_name, canonical)

    def _init_history(self) -> None:
        """Load the history and bind tab completion (readline on a terminal)."""
        try:
            import readline
        except ImportError:
            return
        readline.set_completer(complete.ReadlineCompleter(
            self.complete_line, readline.get_line_buffer, readline.get_begidx))
        readline.set_completer_delims(" \t\n")
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")
        try:
            readline.read_history_file(history_path())
        except OSError:
            pass

    def _save_history(self) -> None:
        try:
            import readline
            readline.set_history_length(1000)
            readline.write_history_file(history_path())
        except (ImportError, OSError):
            pass
