"""Twins of the D cases (deadlines and timeouts, rule R6): Trio, asyncio (``timeout``,
``timeout_at``, ``Timeout.reschedule``) and AnyIO. Each mirrors the test of the same id
in ``tests/conformance/deadlines.rs``, event for event.

Translation of results: a Trio / AnyIO cancel scope that caught its cancellation is our
``Ok(None)``; ``TooSlowError`` / ``TimeoutError`` is our ``TimedOut`` (``io::ErrorKind::
TimedOut``); a ``Cancelled`` coming out is our ``Err(Cancelled)`` (an ``io::Error`` of
kind ``Other``). asyncio has no move-on scope: its idiom, an ``asyncio.timeout`` whose
``TimeoutError`` is caught, plays our ``CancelScope`` with a deadline (``MoveOn``
below); its flags are ``expired()`` and "the timeout turned the cancellation into
``TimeoutError``". Durations are written as Rust's ``{:?}`` writes a ``Duration``.
"""

import asyncio
import math

import anyio
import outcome
import trio

from harness import case, b, reason, rust_str

# ---- helpers -----------------------------------------------------------------------


def dur(seconds: float) -> str:
    """A duration (in seconds) as Rust's ``{:?}`` of ``Duration`` writes it."""
    n = round(seconds * 1e9)
    for unit, size in (("s", 10**9), ("ms", 10**6), ("µs", 10**3)):
        if n >= size:
            whole, frac = divmod(n, size)
            if not frac:
                return f"{whole}{unit}"
            digits = len(str(size)) - 1
            return f"{whole}.{str(frac).rjust(digits, '0').rstrip('0')}{unit}"
    return f"{n}ns"


def opt_deadline(d, t0) -> str:
    """An absolute deadline relative to ``t0``, as our ``Option<Duration>``: ``None``
    for "no deadline" (Trio's ``inf``, asyncio's ``None``)."""
    if d is None or d == math.inf:
        return "None"
    return f"Some({dur(d - t0)})"


def ced(t0) -> str:
    return opt_deadline(trio.current_effective_deadline(), t0)


def kind(e: BaseException, cancelled_cls) -> str:
    """The ``io::ErrorKind`` our runtime gives this outcome of a timeout."""
    if isinstance(e, (trio.TooSlowError, TimeoutError)):
        return "TimedOut"
    if isinstance(e, cancelled_cls):
        return "Other"
    return f"<{type(e).__name__}>"


class MoveOn:
    """asyncio's move-on idiom: ``asyncio.timeout_at(when)`` whose ``TimeoutError`` is
    caught. ``cancel_called`` is ``expired()``, ``cancelled_caught`` is "the timeout
    raised ``TimeoutError`` for the cancellation it caused", like a scope that absorbed
    it."""

    def __init__(self, when):
        self.cm = asyncio.timeout_at(when)
        self.cancelled_caught = False

    @property
    def cancel_called(self):
        return self.cm.expired()

    async def __aenter__(self):
        await self.cm.__aenter__()
        return self

    async def __aexit__(self, *exc):
        try:
            return await self.cm.__aexit__(*exc)
        except TimeoutError:
            self.cancelled_caught = True
            return True


def move_on_after(delay):
    loop = asyncio.get_running_loop()
    return MoveOn(None if delay is None else loop.time() + delay)


def timeout_reason(*cms) -> str:
    """The reason of an asyncio ``CancelledError`` raised in these timeouts."""
    if any(cm.expired() for cm in cms):
        return "deadline reached"
    return "cancelled (not by a timeout)"


# ---- D01 ---------------------------------------------------------------------------


@case("D01", "trio")
async def d01(env):
    log = env.log()
    value = None
    with trio.move_on_after(1) as first:
        log.push("body: sleeping 5s")
        try:
            await trio.sleep(5)
        except trio.Cancelled as c:
            log.push(f"body: sleep failed ({reason(c)})")
            raise
        log.push("body: not reached")
        value = 5
    log.push("after move_on_after")
    log.push(f"move_on_after returned {'Ok(None)' if first.cancelled_caught else f'Ok(Some({value}))'}")
    with trio.CancelScope(relative_deadline=1) as scope:
        await trio.sleep(5)
    log.push("after scope")
    log.flags("scope", scope)


# ---- D02 ---------------------------------------------------------------------------


@case("D02", "trio")
async def d02(env):
    log = env.log()
    value = None
    with trio.CancelScope(relative_deadline=5) as scope:
        await trio.sleep(1)
        value = 7
    log.push(f"scope returned {'Ok(None)' if value is None else f'Ok(Some({value}))'}")
    value = None
    with trio.move_on_after(5):
        await trio.sleep(1)
        value = 8
    log.push(f"move_on_after returned {'Ok(None)' if value is None else f'Ok(Some({value}))'}")
    await trio.sleep(10)
    await trio.lowlevel.checkpoint()
    log.push("slept past the old deadlines")
    log.flags("scope", scope)


# ---- D03 ---------------------------------------------------------------------------


async def _d03_trio(env):
    log = env.log()
    try:
        with trio.fail_after(1):
            await trio.sleep(5)
        log.push("io: Ok(5)")
    except BaseException as e:
        c = isinstance(e, trio.Cancelled)
        log.push(f"io: kind={kind(e, trio.Cancelled)} cancelled={b(c)}")
    try:
        with trio.fail_after(1):
            await trio.sleep(5)
        log.push("box: Ok(5)")
    except BaseException as e:
        log.push(f"box: timed_out={b(isinstance(e, trio.TooSlowError))} "
                 f"cancelled={b(isinstance(e, trio.Cancelled))}")
    await trio.lowlevel.checkpoint()
    log.push("caller: checkpoint ok")


@case("D03", "trio")
async def d03_trio(env):
    await _d03_trio(env)


@case("D03", "asyncio")
async def d03_asyncio(env):
    log = env.log()
    try:
        async with asyncio.timeout(1):
            await asyncio.sleep(5)
        log.push("io: Ok(5)")
    except BaseException as e:
        c = isinstance(e, asyncio.CancelledError)
        log.push(f"io: kind={kind(e, asyncio.CancelledError)} cancelled={b(c)}")
    try:
        async with asyncio.timeout(1):
            await asyncio.sleep(5)
        log.push("box: Ok(5)")
    except BaseException as e:
        log.push(f"box: timed_out={b(isinstance(e, TimeoutError))} "
                 f"cancelled={b(isinstance(e, asyncio.CancelledError))}")
    await asyncio.sleep(0)
    log.push("caller: checkpoint ok")


# ---- D04 ---------------------------------------------------------------------------


@case("D04", "trio")
async def d04_trio(env):
    log = env.log()
    t0 = trio.current_time()
    scope = trio.CancelScope(deadline=t0 + 10)
    async with trio.open_nursery() as nursery:

        async def mover():
            await trio.sleep(1)
            log.push("mover: deadline -> 3s")
            scope.deadline = t0 + 3

        nursery.start_soon(mover)
        with scope:
            try:
                await trio.sleep(100)
            except trio.Cancelled as c:
                log.push(f"body: sleep failed ({reason(c)})")
                raise
        result = "Ok(None)" if scope.cancelled_caught else "Ok(Some(()))"
    log.push(f"scope returned {result}; deadline at {opt_deadline(scope.deadline, t0)}")
    log.flags("scope", scope)


@case("D04", "asyncio")
async def d04_asyncio(env):
    log = env.log()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    scope = MoveOn(t0 + 10)

    async def mover():
        await asyncio.sleep(1)
        log.push("mover: deadline -> 3s")
        scope.cm.reschedule(t0 + 3)

    task = asyncio.create_task(mover())
    async with scope:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            log.push(f"body: sleep failed ({timeout_reason(scope.cm)})")
            raise
    result = "Ok(None)" if scope.cancelled_caught else "Ok(Some(()))"
    await task
    log.push(f"scope returned {result}; deadline at {opt_deadline(scope.cm.when(), t0)}")
    log.flags("scope", scope)


# ---- D05 ---------------------------------------------------------------------------


@case("D05", "trio")
async def d05_trio(env):
    log = env.log()
    t0 = trio.current_time()
    first = trio.CancelScope(deadline=t0 + 2)
    async with trio.open_nursery() as nursery:

        async def mover():
            await trio.sleep(1)
            log.push("mover: deadline -> 5s")
            first.deadline = t0 + 5

        nursery.start_soon(mover)
        with first:
            await trio.sleep(3)
            log.push("body: slept 3s")
            try:
                await trio.sleep(100)
            except trio.Cancelled as c:
                log.push(f"body: sleep failed ({reason(c)})")
                raise
    r1 = "Ok(None)" if first.cancelled_caught else "Ok(Some(()))"

    t1 = trio.current_time()
    scope = trio.CancelScope(deadline=t1 + 2)
    async with trio.open_nursery() as nursery:

        async def remover():
            await trio.sleep(1)
            log.push("remover: deadline -> none")
            scope.deadline = math.inf

        nursery.start_soon(remover)
        done = False
        with scope:
            await trio.sleep(10)
            log.push("body: slept 10s")
            done = True
    r2 = "Ok(Some(()))" if done else "Ok(None)"
    log.push(f"scopes returned {r1} and {r2}; deadline {opt_deadline(scope.deadline, t1)}")
    log.flags("scope", scope)


@case("D05", "asyncio")
async def d05_asyncio(env):
    log = env.log()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first = MoveOn(t0 + 2)

    async def mover():
        await asyncio.sleep(1)
        log.push("mover: deadline -> 5s")
        first.cm.reschedule(t0 + 5)

    task = asyncio.create_task(mover())
    async with first:
        await asyncio.sleep(3)
        log.push("body: slept 3s")
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            log.push(f"body: sleep failed ({timeout_reason(first.cm)})")
            raise
    r1 = "Ok(None)" if first.cancelled_caught else "Ok(Some(()))"
    await task

    t1 = loop.time()
    scope = MoveOn(t1 + 2)

    async def remover():
        await asyncio.sleep(1)
        log.push("remover: deadline -> none")
        scope.cm.reschedule(None)

    task = asyncio.create_task(remover())
    done = False
    async with scope:
        await asyncio.sleep(10)
        log.push("body: slept 10s")
        done = True
    r2 = "Ok(Some(()))" if done else "Ok(None)"
    await task
    log.push(f"scopes returned {r1} and {r2}; deadline {opt_deadline(scope.cm.when(), t1)}")
    log.flags("scope", scope)


# ---- D06 ---------------------------------------------------------------------------


@case("D06", "trio")
async def d06(env):
    log = env.log()
    t0 = trio.current_time()
    with trio.CancelScope(deadline=t0 - 1) as scope:
        log.push("body runs")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as c:
            log.push(f"first checkpoint failed ({reason(c)})")
            raise
    log.flags("scope", scope)
    value = None
    with trio.move_on_at(trio.current_time()):
        await trio.lowlevel.checkpoint()
        value = 1
    log.push(f"move_on_at(now) returned {'Ok(None)' if value is None else f'Ok(Some({value}))'}")
    try:
        with trio.fail_at(t0 - 1):
            await trio.lowlevel.checkpoint()
        log.push("fail_at(past) returned Ok(())")
    except BaseException as e:
        log.push(f"fail_at(past) failed: kind={kind(e, trio.Cancelled)}")


# ---- D07 ---------------------------------------------------------------------------


@case("D07", "trio")
async def d07(env):
    log = env.log()
    t0 = trio.current_time()
    log.push(f"task: {ced(t0)}")
    with trio.CancelScope(deadline=t0 + 10):
        log.push(f"a(10): {ced(t0)}")
        with trio.CancelScope(deadline=t0 + 5):
            log.push(f"a(10)/b(5): {ced(t0)}")
            with trio.CancelScope(deadline=t0 + 20):
                log.push(f"a/b/c(20): {ced(t0)}")
                with trio.CancelScope(shield=True):
                    log.push(f"a/b/c/shield: {ced(t0)}")
                    with trio.CancelScope(relative_deadline=40):
                        log.push(f"a/b/c/shield/d(40): {ced(t0)}")
                with trio.CancelScope(shield=True, deadline=t0 + 30):
                    log.push(f"a/b/c/shield(30): {ced(t0)}")
                log.push(f"a/b/c again: {ced(t0)}")
    log.push(f"task again: {ced(t0)}")

    with trio.CancelScope(deadline=t0 + 8):
        async with trio.open_nursery() as nursery:
            nursery.cancel_scope.deadline = t0 + 6

            async def child():
                log.push(f"child of group(6) in scope(8): {ced(t0)}")

            nursery.start_soon(child)
            log.push(f"body of group(6): {ced(t0)}")
        async with trio.open_nursery() as nursery:

            async def child2():
                log.push(f"child of group() in scope(8): {ced(t0)}")

            nursery.start_soon(child2)


# ---- D08 ---------------------------------------------------------------------------


@case("D08", "asyncio")
async def d08(env):
    log = env.log()
    async with move_on_after(1) as outer:
        ok = True
        try:
            async with move_on_after(5) as inner:
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    log.push(f"body: sleep failed ({timeout_reason(outer.cm, inner.cm)})")
                    raise
        except BaseException:
            ok = False
            raise
        finally:
            log.push(f"inner returned Ok? {b(ok)}")
        log.push("outer: not reached")

    result = None
    async with move_on_after(1):
        inner_result = None
        async with move_on_after(5):
            await asyncio.sleep(10)
            inner_result = 1
        result = f"Some({'None' if inner_result is None else f'Some({inner_result})'})"
    log.push(f"nested move_on_after returned Ok({'None' if result is None else result})")
    log.flags("outer", outer)
    log.flags("inner", inner)


# ---- D09 ---------------------------------------------------------------------------


class Oneshot:
    """A channel that is not a checkpoint: like ``futures::channel::oneshot``, its wait
    ignores cancellation (the abort is refused), so a deadline passing meanwhile is
    noticed only at the next real checkpoint."""

    def __init__(self):
        self.task = None
        self.value = None

    async def recv(self):
        if self.value is not None:
            return self.value
        self.task = trio.lowlevel.current_task()
        return await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.FAILED)

    def send(self, value):
        if self.task is None:
            self.value = value
        else:
            trio.lowlevel.reschedule(self.task, outcome.Value(value))


@case("D09", "trio")
async def d09(env):
    log = env.log()
    channel = Oneshot()
    async with trio.open_nursery() as nursery:

        async def sender():
            await trio.sleep(2)
            channel.send("data")

        nursery.start_soon(sender)
        with trio.move_on_after(1) as scope:
            v = await channel.recv()
            log.push(f"got {v}; cancel_called={b(scope.cancel_called)}")
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled as c:
                log.push(f"next checkpoint failed ({reason(c)})")
                raise
    log.flags("scope", scope)


# ---- D10 ---------------------------------------------------------------------------


@case("D10", "trio")
async def d10(env):
    log = env.log()
    with trio.CancelScope() as outer:
        outer.cancel()
        done = False
        with trio.move_on_after(1, shield=True) as shielded:
            await trio.sleep(5)
            done = True
        log.push(f"shielded move_on: {'Ok(Some(()))' if done else 'Ok(None)'}")
        try:
            with trio.fail_after(1, shield=True):
                await trio.sleep(5)
            log.push("shielded fail_after: Ok(())")
        except BaseException as e:
            log.push(f"shielded fail_after: Err({kind(e, trio.Cancelled)})")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("outer: checkpoint failed")
            raise
    log.flags("shielded", shielded)
    log.flags("outer", outer)


# ---- D11 ---------------------------------------------------------------------------


async def _d11_part(log, label, fail_cm, first=None):
    """The body of one part: a ``fail_after`` around a long sleep (``first`` runs first
    inside it); what came out of it is recorded (only when it failed, as in the Rust
    test) and passed on."""
    try:
        with fail_cm:
            if first:
                first()
            await anyio.sleep(10)
    except BaseException as e:
        cancelled_cls = anyio.get_cancelled_exc_class()
        log.push(f"{label} kind={kind(e, cancelled_cls)} cancelled={b(isinstance(e, cancelled_cls))}")
        raise


@case("D11", "anyio")
async def d11(env):
    log = env.log()

    async with anyio.create_task_group() as tg:
        outer = anyio.CancelScope()

        async def canceller():
            await anyio.sleep(1)
            outer.cancel()

        tg.start_soon(canceller)
        with outer:
            await _d11_part(log, "explicit: fail_after err", anyio.fail_after(5))
    log.flags("explicit outer", outer)

    # Same instant; the outer's timer was armed first.
    with anyio.move_on_after(2) as outer:
        await _d11_part(log, "same instant, outer first:", anyio.fail_after(2))
    log.flags("outer armed first", outer)

    # Same instant; the inner's timer was armed first.
    t = anyio.current_time() + 2
    with anyio.CancelScope() as outer:

        def arm_outer():
            outer.deadline = t

        await _d11_part(log, "same instant, inner first:", anyio.fail_at(t), arm_outer)
    log.flags("inner armed first", outer)


# ---- D12 ---------------------------------------------------------------------------


@case("D12", "trio")
async def d12_trio(env):
    log = env.log()
    t0 = trio.current_time()
    value = None
    with trio.move_on_after(math.inf):
        log.push(f"MAX: effective deadline {ced(t0)}")
        await trio.sleep(1000 * 24 * 3600)
        value = "slept 1000 days"
    log.push(f"MAX: move_on_after returned {'Ok(None)' if value is None else f'Ok(Some({rust_str(value)}))'}")
    try:
        with trio.fail_after(math.inf):
            await trio.sleep(1)
        log.push("MAX: fail_after returned Ok(1)")
    except BaseException as e:
        log.push(f"MAX: fail_after returned Err({kind(e, trio.Cancelled)})")
    with trio.CancelScope(relative_deadline=math.inf) as scope:
        log.push(f"MAX scope: deadline {opt_deadline(scope.deadline, t0)}")
        await trio.lowlevel.checkpoint()
    log.flags("MAX scope", scope)
    value = None
    with trio.move_on_after(1):
        await trio.sleep(math.inf)
        value = "()"
    log.push(f"sleep(MAX) in move_on_after(1s): {'Ok(None)' if value is None else f'Ok(Some({value}))'}")

    value = None
    with trio.move_on_after(0):
        log.push("ZERO: body runs")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as c:
            log.push(f"ZERO: first checkpoint failed ({reason(c)})")
            raise
        value = "()"
    log.push(f"ZERO: move_on_after returned {'Ok(None)' if value is None else f'Ok(Some({value}))'}")
    try:
        with trio.fail_after(0):
            value = 5
        log.push(f"ZERO: fail_after without checkpoint returned Ok({value})")
    except BaseException as e:
        log.push(f"ZERO: fail_after without checkpoint returned Err({kind(e, trio.Cancelled)})")
    try:
        with trio.fail_after(0):
            await trio.lowlevel.checkpoint()
        log.push("ZERO: fail_after with checkpoint returned Ok(5)")
    except BaseException as e:
        log.push(f"ZERO: fail_after with checkpoint returned Err({kind(e, trio.Cancelled)})")


@case("D12", "asyncio")
async def d12_asyncio(env):
    log = env.log()
    loop = asyncio.get_running_loop()
    # 1000 days of virtual time: `VirtualTimeLoop` keeps a 1 µs clock resolution so
    # timers due at such times still run.
    t0 = loop.time()
    value = None
    async with move_on_after(math.inf) as a:
        log.push(f"MAX: effective deadline {opt_deadline(a.cm.when(), t0)}")
        await asyncio.sleep(1000 * 24 * 3600)
        value = "slept 1000 days"
    log.push(f"MAX: move_on_after returned {'Ok(None)' if value is None else f'Ok(Some({rust_str(value)}))'}")
    try:
        async with asyncio.timeout(math.inf):
            await asyncio.sleep(1)
        log.push("MAX: fail_after returned Ok(1)")
    except BaseException as e:
        log.push(f"MAX: fail_after returned Err({kind(e, asyncio.CancelledError)})")
    async with move_on_after(math.inf) as scope:
        log.push(f"MAX scope: deadline {opt_deadline(scope.cm.when(), t0)}")
        await asyncio.sleep(0)
    log.flags("MAX scope", scope)
    value = None
    async with move_on_after(1):
        await asyncio.sleep(math.inf)
        value = "()"
    log.push(f"sleep(MAX) in move_on_after(1s): {'Ok(None)' if value is None else f'Ok(Some({value}))'}")

    value = None
    async with move_on_after(0) as z:
        log.push("ZERO: body runs")
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            log.push(f"ZERO: first checkpoint failed ({timeout_reason(z.cm)})")
            raise
        value = "()"
    log.push(f"ZERO: move_on_after returned {'Ok(None)' if value is None else f'Ok(Some({value}))'}")
    try:
        async with asyncio.timeout(0):
            value = 5
        log.push(f"ZERO: fail_after without checkpoint returned Ok({value})")
    except BaseException as e:
        log.push(f"ZERO: fail_after without checkpoint returned Err({kind(e, asyncio.CancelledError)})")
    try:
        async with asyncio.timeout(0):
            await asyncio.sleep(0)
        log.push("ZERO: fail_after with checkpoint returned Ok(5)")
    except BaseException as e:
        log.push(f"ZERO: fail_after with checkpoint returned Err({kind(e, asyncio.CancelledError)})")


# ---- D13 ---------------------------------------------------------------------------


@case("D13", "trio")
async def d13(env):
    log = env.log()
    t0 = trio.current_time()
    scope = trio.CancelScope(relative_deadline=2)
    try:
        before = opt_deadline(scope.deadline, t0)
    except RuntimeError:  # "unentered relative cancel scope does not have an absolute deadline"
        before = "None"
    log.push(f"not entered: deadline {before}")
    await trio.sleep(5)
    with scope:
        log.push(f"entered; deadline at {opt_deadline(scope.deadline, t0)}")
        try:
            await trio.sleep(10)
        except trio.Cancelled as c:
            log.push(f"sleep failed ({reason(c)})")
            raise

    early = trio.move_on_after(2)
    early_fail = trio.fail_after(2)
    await trio.sleep(5)
    with early:
        await trio.sleep(10)
    log.push("move_on_after built 5s before entry fired" if early.cancelled_caught
             else "move_on_after built 5s before entry did not fire")
    try:
        with early_fail:
            await trio.sleep(10)
        log.push("fail_after built 7s before entry did not fire")
    except trio.TooSlowError:
        log.push("fail_after built 7s before entry fired")
