"""The netem spelling of a link's impairments, parsed into a NetemSpec.

The grammar is tc-netem's (iproute2 tc/q_netem.c, man tc-netem), restricted
to what emu/net/link.py models; options may come in any order, each once:

    limit N                          queue limit in frames (tail drop); default 1000
    delay T [JITTER [CORR]]          also `latency`; T, JITTER are times
    distribution uniform|normal      jitter distribution (needs delay and jitter)
    loss [random] P [CORR]           also `drop`
    loss gemodel P [R [1-H [1-K]]]   Gilbert-Elliot
    duplicate P [CORR]
    reorder P [CORR]                 needs a delay (as netem); sets gap 1
    gap N                            needs reorder
    corrupt P [CORR]                 one bit flip per corrupted frame
    rate R                           serialisation delay
    seed N                           this link's random seed (else derived from --seed)

Units, as tc: times `ns`, `us`/`usec`, `ms`/`msec`, `s`/`sec` (a bare number
is microseconds, tc's rule); percentages `5%` or a bare `5` (tc reads both
as percent); rates `bit` (or bare), `kbit`, `mbit`, `gbit`, `tbit`,
`kibit`..`tibit`, and bytes per second `bps`, `kbps`, `mbps`, `gbps`,
`kibps`..`tibps`. As in tc, an optional argument is taken only if the next
word starts with a digit. Bad specs raise ValueError with one line naming
the offending word.

Layer: net (imports only emu.core).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace

DEFAULT_LIMIT = 1000  # netem's default queue limit (packets)

_TIME_UNITS = {
    "ns": 1, "nsec": 1, "nsecs": 1,
    "us": 1_000, "usec": 1_000, "usecs": 1_000, "": 1_000,
    "ms": 1_000_000, "msec": 1_000_000, "msecs": 1_000_000,
    "s": 1_000_000_000, "sec": 1_000_000_000, "secs": 1_000_000_000,
}
RATE_UNITS = {  # bits per second per unit (tc's get_rate64 table)
    "": 1, "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12,
    "kibit": 2**10, "mibit": 2**20, "gibit": 2**30, "tibit": 2**40,
    "bps": 8, "kbps": 8 * 10**3, "mbps": 8 * 10**6, "gbps": 8 * 10**9, "tbps": 8 * 10**12,
    "kibps": 8 * 2**10, "mibps": 8 * 2**20, "gibps": 8 * 2**30, "tibps": 8 * 2**40,
}
_NUM = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)([A-Za-z%]*)$")


@dataclass(frozen=True)
class NetemSpec:
    """One direction's impairments. Probabilities are fractions in [0, 1]."""

    limit: int = DEFAULT_LIMIT
    delay_ns: int = 0
    jitter_ns: int = 0
    delay_corr: float = 0.0
    distribution: str = "uniform"
    loss: float = 0.0
    loss_corr: float = 0.0
    gemodel: tuple[float, float, float, float] | None = None  # p, r, 1-h, 1-k
    duplicate: float = 0.0
    duplicate_corr: float = 0.0
    reorder: float = 0.0
    reorder_corr: float = 0.0
    gap: int = 0
    corrupt: float = 0.0
    corrupt_corr: float = 0.0
    rate_bps: int = 0
    seed: int | None = field(default=None, compare=True)

    @property
    def is_perfect(self) -> bool:
        """True if the link neither delays nor damages anything."""
        return self == replace(NetemSpec(), limit=self.limit, seed=self.seed)

    def __str__(self) -> str:
        """The canonical netem spelling (parse_netem(str(s)) == s)."""
        out: list[str] = []
        if self.limit != DEFAULT_LIMIT:
            out.append(f"limit {self.limit}")
        if self.delay_ns or self.jitter_ns:
            out.append(f"delay {_fmt_time(self.delay_ns)}")
            if self.jitter_ns:
                out.append(_fmt_time(self.jitter_ns))
                if self.delay_corr:
                    out.append(_fmt_pct(self.delay_corr))
            if self.distribution != "uniform":
                out.append(f"distribution {self.distribution}")
        if self.gemodel is not None:
            out.append("loss gemodel " + " ".join(_fmt_pct(x) for x in self.gemodel))
        elif self.loss:
            out.append(f"loss {_fmt_pct(self.loss)}")
            if self.loss_corr:
                out.append(_fmt_pct(self.loss_corr))
        for name in ("duplicate", "reorder", "corrupt"):
            p = getattr(self, name)
            if p:
                out.append(f"{name} {_fmt_pct(p)}")
                c = getattr(self, f"{name}_corr")
                if c:
                    out.append(_fmt_pct(c))
        if self.gap > 1:
            out.append(f"gap {self.gap}")
        if self.rate_bps:
            out.append(f"rate {self.rate_bps}bit")
        if self.seed is not None:
            out.append(f"seed {self.seed}")
        return " ".join(out)


def _fmt_time(ns: int) -> str:
    return f"{ns}ns"


def _fmt_pct(p: float) -> str:
    return f"{p * 100:.10g}%"


class _Words:
    """A cursor over the words of a spec, for tc-style optional arguments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = text.split()
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.words)

    def take(self, what: str) -> str:
        if self.i >= len(self.words):
            raise self.error(f"'{what}' needs a value")
        w = self.words[self.i]
        self.i += 1
        return w

    def next_is_number(self) -> bool:
        """tc's NEXT_IS_NUMBER: the next word starts with a digit (or a dot)."""
        return self.i < len(self.words) and self.words[self.i][:1] in "0123456789."

    def error(self, msg: str) -> ValueError:
        return ValueError(f"bad netem spec {self.text!r}: {msg}")


def _number(w: _Words, word: str, units: dict[str, int | float], kind: str) -> float:
    m = _NUM.match(word)
    if m is None or m.group(2).lower() not in units:
        raise w.error(f"{word!r} is not a {kind}")
    return float(m.group(1)) * units[m.group(2).lower()]


def _time(w: _Words, word: str) -> int:
    return int(round(_number(w, word, _TIME_UNITS, "time (e.g. 200us, 5ms)")))


def _percent(w: _Words, word: str) -> float:
    v = _number(w, word, {"%": 1, "": 1}, "percentage (e.g. 5%)") / 100.0
    if not 0.0 <= v <= 1.0:
        raise w.error(f"{word!r} is not between 0% and 100%")
    return v


def _rate(w: _Words, word: str) -> int:
    v = int(round(_number(w, word, RATE_UNITS, "rate (e.g. 100mbit)")))
    if v <= 0:
        raise w.error(f"rate {word!r} must be positive")
    return v


def _count(w: _Words, word: str, what: str) -> int:
    if not word.isdigit():
        raise w.error(f"{what} {word!r} is not a whole number")
    return int(word)


def parse_netem(text: str | NetemSpec | None) -> NetemSpec:
    """Parse the netem spelling (module docstring) into a NetemSpec.

    None or "" gives a perfect link; a NetemSpec is returned unchanged.
    Raises ValueError (one line, naming the bad word) for a bad spec.
    """
    if isinstance(text, NetemSpec):
        return text
    w = _Words(text or "")
    v: dict[str, object] = {}
    seen: set[str] = set()

    def once(key: str) -> None:
        if key in seen:
            raise w.error(f"'{key}' given twice")
        seen.add(key)

    while w.more():
        opt = w.take("option").lower()
        if opt == "limit":
            once("limit")
            v["limit"] = _count(w, w.take("limit"), "limit")
        elif opt in ("delay", "latency"):
            once("delay")
            v["delay_ns"] = _time(w, w.take(opt))
            if w.next_is_number():
                v["jitter_ns"] = _time(w, w.take("jitter"))
                if w.next_is_number():
                    v["delay_corr"] = _percent(w, w.take("correlation"))
        elif opt == "distribution":
            once("distribution")
            dist = w.take("distribution").lower()
            if dist not in ("uniform", "normal"):
                raise w.error(f"distribution {dist!r} is not supported (uniform, normal)")
            v["distribution"] = dist
        elif opt in ("loss", "drop"):
            once("loss")
            kind = w.take("loss")
            if kind == "gemodel":
                p = _percent(w, w.take("loss gemodel p"))
                ge = [p, 1.0 - p, 1.0, 0.0]  # tc's defaults: r = 1-p, 1-h = 100%, 1-k = 0%
                for j in range(1, 4):
                    if not w.next_is_number():
                        break
                    ge[j] = _percent(w, w.take("loss gemodel"))
                v["gemodel"] = tuple(ge)
            elif kind in ("state", "trace"):
                raise w.error(f"'loss {kind}' is not supported (use random or gemodel)")
            else:
                if kind == "random":
                    kind = w.take("loss random")
                v["loss"] = _percent(w, kind)
                if w.next_is_number():
                    v["loss_corr"] = _percent(w, w.take("correlation"))
        elif opt in ("duplicate", "reorder", "corrupt"):
            once(opt)
            v[opt] = _percent(w, w.take(opt))
            if w.next_is_number():
                v[f"{opt}_corr"] = _percent(w, w.take("correlation"))
        elif opt == "gap":
            once("gap")
            v["gap"] = _count(w, w.take("gap"), "gap")
        elif opt == "rate":
            once("rate")
            v["rate_bps"] = _rate(w, w.take("rate"))
        elif opt == "seed":
            once("seed")
            v["seed"] = _count(w, w.take("seed"), "seed")
        elif opt in ("ecn", "slot"):
            raise w.error(f"'{opt}' is not supported")
        else:
            raise w.error(f"unknown option {opt!r}")

    if v.get("reorder"):
        if not v.get("delay_ns"):
            raise w.error("reorder needs a delay (netem reorders by skipping the delay)")
        v.setdefault("gap", 1)
        if v["gap"] == 0:
            v["gap"] = 1
    elif v.get("gap"):
        raise w.error("gap needs reorder")
    if "distribution" in v and not v.get("jitter_ns"):
        raise w.error("distribution needs a delay with jitter")
    return NetemSpec(**v)  # type: ignore[arg-type]


SPEC_FIELDS = tuple(f.name for f in fields(NetemSpec))
