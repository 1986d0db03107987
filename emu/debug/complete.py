"""Tab completion for the `emu debug` prompt, as gdb completes: command
names and aliases in the first word, `info` topics after `info`, command
names (and `info` topics) after `help`, and for commands that take an
expression or a location, symbol names and `$registers`.

`candidates` is pure (tests call it); `ReadlineCompleter` adapts it to
readline's `completer(text, state)` protocol.

Layer: debug (above the tools it uses: flags, session, report).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from emu.debug.expr import CSR_NAMES, REG_ALIASES
from emu.debug.reginfo import ALL as REGISTERS

EXPRESSION_COMMANDS = {"print", "output", "display", "x", "xp", "whatis", "break", "watch",
                       "rwatch", "awatch", "walk", "disas"}
_REG_WORDS = sorted({*REGISTERS, *REG_ALIASES, *CSR_NAMES})


def candidates(line: str, commands: Iterable[tuple[str, tuple[str, ...]]],
               topics: Iterable[tuple[str, tuple[str, ...]]],
               symbols: Callable[[], Iterable[str]], canonical: Callable[[str], str | None]
               ) -> list[str]:
    """Completions (whole words, sorted) of the last word of `line`, the
    text before the cursor. `commands` and `topics` are (name, aliases);
    `canonical(word)` names the command a first word stands for (or None)."""
    words = line.split()
    if line and not line[-1].isspace():
        prefix, before = (words[-1] if words else ""), words[:-1]
    else:
        prefix, before = "", words
    if not before:
        pool: Iterable[str] = [w for n, al in commands for w in (n, *al)]
    else:
        head = canonical(before[0].split("/", 1)[0])
        if head == "info" and len(before) == 1:
            pool = [n for n, _ in topics]
        elif head == "help" and len(before) == 1:
            pool = [n for n, _ in commands]
        elif head == "help" and len(before) == 2 and canonical(before[1]) == "info":
            pool = [n for n, _ in topics]
        elif head in EXPRESSION_COMMANDS:
            if prefix.startswith("$"):
                pool = ["$" + r for r in _REG_WORDS]
            else:
                tail = prefix.lstrip("*&(-")
                lead = prefix[:len(prefix) - len(tail)]
                return sorted({lead + s for s in symbols() if s.startswith(tail)})
        else:
            pool = []
    return sorted({w for w in pool if w.startswith(prefix)})


class ReadlineCompleter:
    """readline's completer protocol over `candidates`: `state` counts the
    calls for one `text`; the full line comes from `line_buffer()`."""

    def __init__(self, complete_line: Callable[[str], list[str]],
                 line_buffer: Callable[[], str], begidx: Callable[[], int]) -> None:
        self.complete_line = complete_line
        self.line_buffer = line_buffer
        self.begidx = begidx
        self._matches: list[str] = []

    def __call__(self, text: str, state: int) -> str | None:
        """The state-th completion of `text`, or None when there are no more."""
        if state == 0:
            line = self.line_buffer()[:self.begidx()] + text
            self._matches = [m + " " for m in self.complete_line(line)]
            if len(self._matches) > 1:
                self._matches = [m.rstrip() for m in self._matches]
        return self._matches[state] if state < len(self._matches) else None
