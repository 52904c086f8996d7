"""The conformance oracle's machinery: case registry, virtual clocks, traces, comparison.

A *twin* is a Python program that plays one conformance case on the real library
(Trio, AnyIO on both backends, or asyncio) and records the same events, with the same
words, as the Rust test in ``tests/conformance/`` records in its ``Log``. The runner
(``oracle.py``) compares the two traces.

Writing a twin::

    from harness import case

    @case("S01", "trio")
    async def s01(env):
        log = env.log()
        with trio.CancelScope() as scope:
            log.push("before cancel")
            ...
        log.flags("scope", scope)

* ``env.log()`` makes a log (a test may use several; they are compared in creation
  order), ``log.push(text)`` records an event at the current virtual time,
  ``log.flags(name, scope)`` records ``"<name>: called=<b> caught=<b>"`` for anything
  with ``cancel_called`` / ``cancelled_caught`` (Trio and AnyIO cancel scopes).
* ``env.now()`` is the virtual time in seconds.
* Options of ``@case``: ``rust="file::test_name"`` when the table row lists several
  tests; ``order="tick"`` when events of one instant come from concurrent tasks whose
  order the rules do not fix (they are compared as a multiset per instant);
  ``differs="why"`` declares that the library does something else on purpose (the
  traces must then differ; the reason goes into the table).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import importlib.metadata
import math
import sys
from typing import Awaitable, Callable

# ---- registry ----------------------------------------------------------------------

LIBS = ("trio", "asyncio", "anyio", "anyio/asyncio", "anyio/trio")


@dataclasses.dataclass
class Case:
    id: str
    lib: str
    fn: Callable[["Env"], Awaitable[None]]
    rust: str | None
    order: str
    differs: str | None
    module: str


CASES: list[Case] = []


def case(id: str, lib: str, *, rust: str | None = None, order: str = "exact",
         differs: str | None = None):
    """Registers a twin of conformance case ``id`` on library ``lib``."""
    if lib not in LIBS:
        raise ValueError(f"{id}: unknown library {lib!r} (one of {LIBS})")
    if order not in ("exact", "tick"):
        raise ValueError(f"{id}: order must be 'exact' or 'tick'")

    def register(fn):
        CASES.append(Case(id, lib, fn, rust, order, differs, fn.__module__))
        return fn

    return register


# ---- what a twin sees --------------------------------------------------------------


class Log:
    """Mirrors ``Log`` of ``tests/conformance/main.rs``."""

    def __init__(self, env: "Env"):
        self.env = env
        self.t0 = env.now()
        self.events: list[tuple[int, str]] = []

    def push(self, event: str) -> None:
        at = round((self.env.now() - self.t0) * 1e9)
        self.events.append((at, str(event)))

    def flags(self, name: str, scope) -> None:
        called = "true" if scope.cancel_called else "false"
        caught = "true" if scope.cancelled_caught else "false"
        self.push(f"{name}: called={called} caught={caught}")


class Env:
    def __init__(self, now: Callable[[], float]):
        self.now = now
        self.logs: list[Log] = []

    def log(self) -> Log:
        log = Log(self)
        self.logs.append(log)
        return log


Trace = list[list[tuple[int, str]]]

# ---- virtual clocks ----------------------------------------------------------------


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time: when nothing is ready it jumps to the next
    timer instead of waiting, like Trio's ``MockClock(autojump_threshold=0)`` and the
    runtime's paused clock."""

    def __init__(self):
        super().__init__()
        self._virtual_now = 0.0
        # A timer is due when `when < now + _clock_resolution`; the real resolution
        # (1e-9 s) is below a float's step at large virtual times (days), where a timer
        # due now would never run. Virtual time needs no finer grain than 1 µs.
        self._clock_resolution = max(self._clock_resolution, 1e-6)
        real_select = self._selector.select

        def select(timeout=None):
            events = real_select(0)
            if events:
                return events
            if timeout is None and not self._ready:
                raise RuntimeError("deadlock: nothing is ready and no timer is pending")
            if timeout:
                self._virtual_now += timeout
            return events

        self._selector.select = select

    def time(self) -> float:
        return self._virtual_now


def run_trio(fn) -> Trace:
    import trio
    import trio.testing

    env = Env(trio.current_time)
    trio.run(fn, env, clock=trio.testing.MockClock(autojump_threshold=0))
    return [log.events for log in env.logs]


def run_asyncio(fn) -> Trace:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        env = Env(lambda: asyncio.get_running_loop().time())
        runner.run(fn(env))
    return [log.events for log in env.logs]


def run_anyio(fn, backend: str) -> Trace:
    import anyio

    env = Env(anyio.current_time)
    if backend == "trio":
        import trio.testing

        options = {"clock": trio.testing.MockClock(autojump_threshold=0)}
    else:
        options = {"loop_factory": VirtualTimeLoop}
    anyio.run(fn, env, backend=backend, backend_options=options)
    return [log.events for log in env.logs]


def runs(c: Case) -> list[tuple[str, Callable[[], Trace]]]:
    """The (label, run) pairs of a twin: AnyIO twins run on both backends, unless the
    twin names one (``anyio/trio``, ``anyio/asyncio``: where the backends disagree, each
    gets its own twin and its own verdict)."""
    if c.lib == "trio":
        return [("trio", lambda: run_trio(c.fn))]
    if c.lib == "asyncio":
        return [("asyncio", lambda: run_asyncio(c.fn))]
    both = [
        ("anyio/asyncio", lambda: run_anyio(c.fn, "asyncio")),
        ("anyio/trio", lambda: run_anyio(c.fn, "trio")),
    ]
    return [(label, run) for label, run in both if c.lib in ("anyio", label)]


def versions() -> dict[str, str]:
    v = {"asyncio": "CPython %d.%d" % sys.version_info[:2]}
    for lib, name in (("trio", "Trio"), ("anyio", "AnyIO")):
        try:
            v[lib] = f"{name} {importlib.metadata.version(lib)}"
        except importlib.metadata.PackageNotFoundError:
            v[lib] = f"{name} (not installed)"
    return v


# ---- comparison --------------------------------------------------------------------


def normalize(trace: Trace, order: str) -> list:
    """A trace in the form compared: exact, or per instant as a sorted multiset."""
    if order == "exact":
        return [list(log) for log in trace]
    out = []
    for log in trace:
        ticks = collections.OrderedDict()
        for t, e in log:
            ticks.setdefault(t, []).append(e)
        out.append([(t, sorted(es)) for t, es in ticks.items()])
    return out


def diff(rust: Trace, twin: Trace) -> str:
    """A short description of how two traces differ (for the report)."""
    lines = []
    for i in range(max(len(rust), len(twin))):
        r = rust[i] if i < len(rust) else None
        p = twin[i] if i < len(twin) else None
        if r == p:
            continue
        lines.append(f"  log {i}:")
        r = r or []
        p = p or []
        for j in range(max(len(r), len(p))):
            a = fmt_event(r[j]) if j < len(r) else "-"
            b = fmt_event(p[j]) if j < len(p) else "-"
            mark = "  " if a == b else "!="
            lines.append(f"    {mark} ours: {a:<48} lib: {b}")
    return "\n".join(lines)


def fmt_event(ev) -> str:
    t, e = ev
    if t % 1_000_000_000 == 0:
        ts = f"{t // 1_000_000_000}s"
    elif t % 1_000_000 == 0:
        ts = f"{t // 1_000_000}ms"
    else:
        ts = f"{t}ns"
    return f"{ts} {e}"


# ---- words shared with the Rust traces ----------------------------------------------


def b(x) -> str:
    """A truth value as Rust's ``{}`` writes a ``bool``."""
    return "true" if x else "false"


def rust_str(s: str) -> str:
    """A string as Rust's ``{:?}`` writes it (ASCII text)."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def group_result(completed: bool, value="()") -> str:
    """What our group returns when nothing came out of it: ``Ok(Some(value))`` if the body
    ran to its end, ``Ok(None)`` if its cancellation was absorbed."""
    return f"Ok(Some({value}))" if completed else "Ok(None)"


def budget(d, now) -> str:
    """An effective deadline as the time left before it, in the Rust tests' words."""
    if d == math.inf:
        return "none"
    if d <= now:
        return "expired"
    left = d - now
    return f"{int(left)}s left" if left == int(left) else f"{left}s left"


def reason(cancelled) -> str:
    """A Trio ``Cancelled``'s reason, in the words of our ``CancelReason``'s Display."""
    src = getattr(cancelled, "source", None)
    text = getattr(cancelled, "reason", None)
    if src == "deadline":
        return "deadline reached"
    if src == "explicit":
        return f"cancelled: {text}" if text else "cancelled explicitly"
    return f"cancelled ({src}: {text})"
