"""Twins of the G cases (task groups): Trio nurseries, asyncio ``TaskGroup``s and AnyIO
task groups. Each mirrors the test of the same id in ``tests/conformance/groups.rs``.

Translation of results: our group returns ``Ok(Some(v))`` when its body returned ``v``,
``Ok(None)`` when the body was cancelled and the group absorbed it, ``Err(TaskGroupError)``
with ``failures()`` where Trio / asyncio raise an ``ExceptionGroup`` (its
``exceptions``). G04, G08, G09, G13, G14, G15 and G17 are written by the lead; G02, G03,
G07 and G16 are anchored on the seed or this project only.
"""

import asyncio

import anyio
import trio

from harness import case, group_result, rust_str


class MyError(Exception):
    """``MyError`` of ``tests/conformance/main.rs``: displays as ``my error: <what>``."""

    def __str__(self):
        return f"my error: {self.args[0]}"


def flags(scope) -> str:
    called = "true" if scope.cancel_called else "false"
    caught = "true" if scope.cancelled_caught else "false"
    return f"called={called} caught={caught}"


def spawn_error(exc: BaseException | None) -> str:
    """A spawn's outcome in the words of ``SpawnError``'s ``{:?}`` (``try_spawn(..).err()``),
    from the ``RuntimeError`` Trio / asyncio raise."""
    if exc is None:
        return "None"
    msg = str(exc)
    if "closed to new arrivals" in msg or msg.endswith("is finished"):
        return "Some(Closed)"
    if "has not been entered" in msg:
        return "Some(NotEntered)"
    return f"Some(<{type(exc).__name__}: {msg}>)"


# ---- G01 -------------------------------------------------------------------------


async def _sleeper(log, name, d, sleep, cancelled):
    try:
        await sleep(d)
    except cancelled:
        log.push(f"{name} cancelled")
        raise
    log.push(f"{name} done")


@case("G01", "trio")
async def g01_trio(env):
    log = env.log()
    completed = False
    async with trio.open_nursery() as nursery:
        for name, s in (("child 1", 1), ("child 3", 3), ("child 2", 2)):
            nursery.start_soon(_sleeper, log, name, s, trio.sleep, trio.Cancelled)
        log.push("body done")
        value, completed = 42, True
    log.push("after group")
    log.push(f"group returned {group_result(completed, value)}")


@case("G01", "asyncio")
async def g01_asyncio(env):
    log = env.log()
    completed = False
    async with asyncio.TaskGroup() as tg:
        for name, s in (("child 1", 1), ("child 3", 3), ("child 2", 2)):
            tg.create_task(_sleeper(log, name, s, asyncio.sleep, asyncio.CancelledError))
        log.push("body done")
        value, completed = 42, True
    log.push("after group")
    log.push(f"group returned {group_result(completed, value)}")


# ---- G05 -------------------------------------------------------------------------


def _failures(eg: BaseExceptionGroup) -> str:
    return "[" + ", ".join(rust_str(str(e)) for e in eg.exceptions) + "]"


@case("G05", "trio", order="tick")
async def g05_trio(env):
    log = env.log()

    async def bad():
        await trio.sleep(1)
        log.push("bad: fails")
        raise MyError("bad")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bad, name="bad")
            nursery.start_soon(_sleeper, log, "sibling", 100, trio.sleep, trio.Cancelled)
            await _sleeper(log, "body", 100, trio.sleep, trio.Cancelled)
        log.push("after group")
        log.push("group returned Ok(..)")
    except BaseExceptionGroup as eg:
        log.push("after group")
        cancellation = eg.split(trio.Cancelled)[0] is not None
        log.push(f"group failed: cancellation={'true' if cancellation else 'false'} "
                 f"failures={_failures(eg)}")


@case("G05", "asyncio", order="tick")
async def g05_asyncio(env):
    log = env.log()

    async def bad():
        await asyncio.sleep(1)
        log.push("bad: fails")
        raise MyError("bad")

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(bad(), name="bad")
            tg.create_task(_sleeper(log, "sibling", 100, asyncio.sleep,
                                    asyncio.CancelledError), name="sibling")
            await _sleeper(log, "body", 100, asyncio.sleep, asyncio.CancelledError)
        log.push("after group")
        log.push("group returned Ok(..)")
    except BaseExceptionGroup as eg:
        log.push("after group")
        cancellation = eg.split(asyncio.CancelledError)[0] is not None
        log.push(f"group failed: cancellation={'true' if cancellation else 'false'} "
                 f"failures={_failures(eg)}")


# ---- G06 -------------------------------------------------------------------------
# Trio runs the children of one batch in either order, so the order of the errors of
# two children failing at the same instant is not fixed there: order="tick" (each
# failure is its own event).


async def _g06(env, open_group, spawn, sleep, cancelled):
    log = env.log()

    async def fail_now(what):
        raise MyError(what)

    try:
        async with open_group() as g:
            spawn(g, fail_now("a"), "a")
            spawn(g, fail_now("b"), "b")
            await _sleeper(log, "body", 100, sleep, cancelled)
        log.push("group 1 returned Ok(..)")
    except BaseExceptionGroup as eg:
        for e in eg.exceptions:
            log.push(f"group 1 failure: {e}")

    async def first():
        await sleep(1)
        raise MyError("first")

    async def second():
        try:
            await sleep(100)
        except cancelled:
            log.push("second: cancelled, cleanup fails")
            raise MyError("second cleanup")

    try:
        async with open_group() as g:
            spawn(g, first(), "first")
            spawn(g, second(), "second")
            await _sleeper(log, "body", 100, sleep, cancelled)
        log.push("group 2 returned Ok(..)")
    except BaseExceptionGroup as eg:
        for e in eg.exceptions:
            log.push(f"group 2 failure: {e}")


async def _coro(c):
    return await c


@case("G06", "trio", order="tick")
async def g06_trio(env):
    await _g06(env, trio.open_nursery,
               lambda n, c, name: n.start_soon(_coro, c, name=name),
               trio.sleep, trio.Cancelled)


@case("G06", "asyncio", order="tick")
async def g06_asyncio(env):
    await _g06(env, asyncio.TaskGroup,
               lambda tg, c, name: tg.create_task(c, name=name),
               asyncio.sleep, asyncio.CancelledError)


# ---- G10 -------------------------------------------------------------------------


@case("G10", "trio", differs="a Trio nursery exists only inside its `async with`, so its "
      "flags cannot be read before entry (the trace has no `before:` line); ours is made by "
      "`TaskGroup::new()` and reads `called=false caught=false` before `run` (during and "
      "after the block the flags agree)")
async def g10(env):
    log = env.log()
    completed = False
    async with trio.open_nursery() as n:
        # No "before:" line: the nursery did not exist a moment ago.
        log.push(f"body start: {flags(n.cancel_scope)}")
        await trio.sleep(1)
        n.cancel_scope.cancel()
        log.push(f"after cancel: {flags(n.cancel_scope)}")
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            log.push(f"body cancelled: {flags(n.cancel_scope)}")
            raise
        completed = True
    log.push(f"after: {flags(n.cancel_scope)}")
    log.push(f"group returned {group_result(completed, '()')}")

    # Cancelled but never reaching a checkpoint.
    completed = False
    async with trio.open_nursery() as n:
        n.cancel_scope.cancel()
        value, completed = 5, True
    log.push(f"cancelled, no checkpoint: returned {group_result(completed, value)}, "
             f"{flags(n.cancel_scope)}")

    # Never cancelled.
    completed = False
    async with trio.open_nursery() as n:
        n.start_soon(trio.sleep, 1)
        value, completed = 6, True
    log.push(f"never cancelled: returned {group_result(completed, value)}, "
             f"{flags(n.cancel_scope)}")


# ---- G11 -------------------------------------------------------------------------
# Only the part both anchors have: spawning after the block is an error. (Trio has no
# nursery before its block and can re-enter a nursery manager; asyncio has no `start`.
# The Rust test asserts those parts without logging them.)


@case("G11", "trio")
async def g11_trio(env):
    log = env.log()
    async with trio.open_nursery() as n:
        pass
    err = None
    try:
        n.start_soon(trio.lowlevel.checkpoint)
    except RuntimeError as e:
        err = e
    log.push(f"after the block: try_spawn -> {spawn_error(err)}")


@case("G11", "asyncio")
async def g11_asyncio(env):
    log = env.log()
    async with asyncio.TaskGroup() as tg:
        pass
    err = None
    coro = asyncio.sleep(0)
    try:
        tg.create_task(coro)
    except RuntimeError as e:
        err = e
        coro.close()
    log.push(f"after the block: try_spawn -> {spawn_error(err)}")


# ---- G12 -------------------------------------------------------------------------


@case("G12", "trio")
async def g12(env):
    log = env.log()

    async def child():
        log.push("child: starts")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("child: first checkpoint failed")
            raise
        log.push("child: not reached")

    completed = False
    async with trio.open_nursery() as n:
        n.cancel_scope.cancel()
        n.start_soon(child)
        log.push("body: returns without a checkpoint")
        completed = True
    log.push(f"group returned {group_result(completed, '()')}")
    log.flags("group", n.cancel_scope)


# ---- G18 -------------------------------------------------------------------------


@case("G18", "trio")
async def g18(env):
    log = env.log()

    async def child_a(nursery):
        await trio.sleep(1)
        log.push("child A: spawning B")
        nursery.start_soon(_sleeper, log, "child B", 1, trio.sleep, trio.Cancelled)
        log.push("child A done")

    completed = False
    async with trio.open_nursery() as group:
        group.start_soon(child_a, group)
        log.push("body done")
        completed = True
    log.push("group exited")

    async def straggler():
        await trio.sleep(1)
        err = None
        try:
            group.start_soon(trio.lowlevel.checkpoint)
        except RuntimeError as e:
            err = e
        log.push(f"straggler: try_spawn -> {spawn_error(err)}")

    async with trio.open_nursery() as host:  # hosts the top-level task
        host.start_soon(straggler)
    log.push(f"group returned {group_result(completed, '()')}")
    log.flags("group", group.cancel_scope)


# ---- G19 -------------------------------------------------------------------------


@case("G19", "anyio", order="tick")
async def g19(env):
    log = env.log()
    handle = {}

    async def a():
        try:
            await anyio.sleep(100)
        except anyio.get_cancelled_exc_class():
            # Its own handle is being cancelled: the task was cancelled (not the group).
            why = ("the task was cancelled"
                   if handle["a"].status is anyio.TaskHandle.Status.CANCELLING
                   else "something else was cancelled")
            log.push(f"a: cancelled ({why})")
            raise

    async def c():
        with anyio.CancelScope() as own:
            await anyio.sleep(1)
            own.cancel()
            await anyio.sleep(100)
        log.push(f"c: own scope returned {'None' if own.cancelled_caught else 'Some(())'}")
        await anyio.sleep(2)
        log.push("c done")

    completed = False
    async with anyio.create_task_group() as tg:
        handle["a"] = tg.start_soon(a, name="a")
        tg.start_soon(_sleeper, log, "b", 2, anyio.sleep, anyio.get_cancelled_exc_class(),
                      name="b")
        tg.start_soon(c, name="c")
        await anyio.sleep(1)
        log.push("body: cancelling child a")
        handle["a"].cancel()
        await anyio.sleep(3)
        alive = handle["a"].status in (anyio.TaskHandle.Status.PENDING,
                                       anyio.TaskHandle.Status.CANCELLING)
        log.push(f"body: still running, a alive={'true' if alive else 'false'}")
        value, completed = 5, True
    log.push(f"group returned {group_result(completed, value)}")
    log.flags("group", tg.cancel_scope)
