"""Twins of the C cases (task cancel counts, rule R9) on asyncio: ``Task.cancel()``,
``cancelling()``, ``uncancel()``, ``TaskGroup``. Each mirrors the test of the same id in
``tests/conformance/counts.rs``, event for event.

Translation: a task's outcome is written as our ``Outcome`` (``Ok(<value>)``,
``Err(<error>)``, ``Cancelled(<reason>)``); a ``CancelledError`` is given our reason
``TaskCancelled`` ("the task was cancelled") when the cancelled task's ``cancelling()``
counts a ``Task.cancel()`` request.
"""

import asyncio

from cases.deadlines import MoveOn
from harness import case, b


class MyError(Exception):
    def __str__(self):
        return f"my error: {self.args[0]}"


def rust_debug(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if v is None:
        return "()"
    return str(v)


def task_reason(task) -> str:
    return "the task was cancelled" if task.cancelling() > 0 else "cancelled (no task request)"


async def join(task, debug=True) -> str:
    """Awaits ``task`` and describes its outcome as our ``Outcome``."""
    try:
        v = await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # the awaiting task itself was cancelled
        return f"Cancelled({task_reason(task)})"
    except Exception as e:
        return f"Err({e})"
    return f"Ok({rust_debug(v) if debug else v})"


class StopGroup(Exception):
    """The sentinel of asyncio 3.11's idiom for a task group's own cancel."""


def group_cancel(tg: asyncio.TaskGroup) -> None:
    """A task group's own cancel on asyncio 3.11, which has no ``TaskGroup.cancel()``:
    the documented idiom, a child that raises a sentinel exception the caller catches
    with ``except*``. The group then does what it does for any child error:
    ``Task.cancel()`` on every other child and once on the parent task (uncancelled in
    ``__aexit__``)."""

    async def stop():
        raise StopGroup

    tg.create_task(stop())


LEVEL = ("asyncio throws `CancelledError` into a task once per wake-up, whatever "
         "`cancelling()` says afterwards")


# ---- C01 ---------------------------------------------------------------------------


@case("C01", "asyncio")
async def c01(env):
    log = env.log()

    async def task():
        log.push("task: started")
        try:
            await asyncio.sleep(100)
            r = "Ok(())"
        except asyncio.CancelledError:
            me = asyncio.current_task()
            r = f"Err({'TaskCancelled' if me.cancelling() else 'not a task cancel'})"
            log.push(f"task: sleep -> {r}, cancelling={me.cancelling()}")
            raise
        log.push(f"task: sleep -> {r}, cancelling={asyncio.current_task().cancelling()}")
        return 1

    h = asyncio.create_task(task())
    log.push(f"main: cancelling={h.cancelling()}")
    await asyncio.sleep(1)
    if h.cancel():
        log.push("main: cancelled the task")
    log.push(f"main: cancelling={h.cancelling()}")
    log.push(f"main: outcome {await join(h)}")


# ---- C02 ---------------------------------------------------------------------------


@case("C02", "asyncio", differs=LEVEL + ": after two `cancel()`s and one `uncancel()` "
      "(`cancelling() == 1`) the task's next checkpoint succeeds and it ends normally; "
      "here the task stays cancelled while `cancelling()` is above zero, so every "
      "checkpoint fails until it ends cancelled (R2, R9)")
async def c02(env):
    log = env.log()

    async def task():
        failed = False
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            failed = True
        log.push(f"task: sleep failed={b(failed)} "
                 f"cancelling={asyncio.current_task().cancelling()}")
        exc = None
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError as e:
            exc = e
        log.push(f"task: next checkpoint failed={b(exc is not None)}")
        if exc is not None:
            raise exc

    h = asyncio.create_task(task())
    await asyncio.sleep(1)
    first, second = h.cancel(), h.cancel()
    two = h.cancelling()
    left = h.uncancel()
    log.push(f"main: cancel() -> {b(first)} {b(second)}, cancelling={two}, "
             f"uncancel -> {left}, cancelling={h.cancelling()}")
    try:
        await h
    except asyncio.CancelledError:
        if not h.cancelled():
            raise
    log.push(f"main: outcome cancelled={b(h.cancelled())}")


# ---- C03 ---------------------------------------------------------------------------


@case("C03", "asyncio", differs="an `uncancel()` from outside does not withdraw a cancel "
      "already requested: asyncio has already cancelled the task's wait, so the task "
      "gets `CancelledError` at once although `cancelling()` is back to 0 (it ends "
      "cancelled); here a request withdrawn before the task noticed it is gone, and the "
      "task runs on (R9); withdrawing it inside, after the task noticed, behaves the same "
      "on both")
async def c03(env):
    log = env.log()

    async def outside_task():
        await asyncio.sleep(5)
        log.push("outside: slept 5s undisturbed")
        return "outside done"

    outside = asyncio.create_task(outside_task())
    await asyncio.sleep(1)
    cancelled = outside.cancel()
    left = outside.uncancel()
    log.push(f"main: outside cancel() -> {b(cancelled)}, uncancel -> {left}")
    log.push(f"main: outside outcome {await join(outside)}")

    async def inside_task():
        try:
            await asyncio.sleep(100)
            return "not cancelled"
        except asyncio.CancelledError:
            log.push(f"inside: cancelled ({task_reason(asyncio.current_task())})")
        left = asyncio.current_task().uncancel()
        log.push(f"inside: uncancel -> {left}")
        await asyncio.sleep(0)
        await asyncio.sleep(1)
        log.push("inside: runs on")
        return "recovered"

    inside = asyncio.create_task(inside_task())
    await asyncio.sleep(1)
    inside.cancel()
    log.push(f"main: inside outcome {await join(inside)}")


# ---- C04 ---------------------------------------------------------------------------


async def _c04_group(log, me):
    async with asyncio.TaskGroup() as tg:

        async def child():
            failed = False
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                failed = True
                raise
            finally:
                log.push(f"child: cancelled={b(failed)} "
                         f"own cancelling={asyncio.current_task().cancelling()}")

        tg.create_task(child())
        await asyncio.sleep(1)
        group_cancel(tg)
        log.push(f"body: after tg.cancel() task cancelling={me.cancelling()}")
        await asyncio.sleep(0)


@case("C04", "asyncio", differs="asyncio 3.11 has no `TaskGroup.cancel()` (it comes "
      "with python/cpython#127214); with its idiom, a child raising a sentinel exception "
      "caught with `except*`, the group `Task.cancel()`s each child, so a cancelled child "
      "counts 1 in `cancelling()`, and, as the error arrives while the group waits in "
      "`__aexit__`, it never uncancels the parent task, which still counts 1 after the "
      "group (python/cpython#116720, fixed in newer versions); here a group's cancel is a "
      "scope's and leaves every task's count at 0 (R9)")
async def c04(env):
    log = env.log()
    loop = asyncio.get_running_loop()

    async def task():
        me = asyncio.current_task()
        try:
            await _c04_group(log, me)
        except* StopGroup:
            pass
        log.push(f"after group: task cancelling={me.cancelling()}")
        # A scope's own cancel: a timeout rescheduled to now, its TimeoutError caught.
        async with MoveOn(None) as s:
            s.cm.reschedule(loop.time())
            await asyncio.sleep(0)
        async with MoveOn(loop.time() + 1):
            await asyncio.sleep(5)
        log.push(f"after scope and timeout: task cancelling={me.cancelling()}")
        await asyncio.sleep(1)

    h = asyncio.create_task(task())
    await asyncio.sleep(0.5)
    log.push(f"main: task cancelling={h.cancelling()}")
    log.push(f"main: outcome {await join(h)}")
    log.push(f"main: own cancelling={asyncio.current_task().cancelling()}")


# ---- C05 ---------------------------------------------------------------------------


@case("C05", "asyncio")
async def c05(env):
    log = env.log()

    async def task():
        host = asyncio.current_task()
        exc = None
        try:
            async with asyncio.TaskGroup() as tg:

                async def child():
                    try:
                        await asyncio.sleep(100)
                    except asyncio.CancelledError:
                        log.push(f"child: cancelled ({task_reason(host)})")
                        raise

                tg.create_task(child())
                log.push("body done, group waiting")
        except BaseException as e:
            exc = e
        cancellation = isinstance(exc, asyncio.CancelledError)
        failures = len(exc.exceptions) if isinstance(exc, BaseExceptionGroup) else 0
        log.push(f"group returned: cancellation={b(cancellation)} failures={failures} "
                 f"task cancelling={host.cancelling()}")
        if exc is not None:
            raise exc
        log.push("not reached")

    h = asyncio.create_task(task())
    await asyncio.sleep(1)
    h.cancel()
    log.push(f"main: outcome {await join(h)}")


# ---- C06 ---------------------------------------------------------------------------


@case("C06", "asyncio")
async def c06(env):
    log = env.log()

    async def five():
        return 5

    h = asyncio.create_task(five())
    log.push(f"awaited: outcome {await join(h)}")
    alive = not h.done()
    cancelled = h.cancel()
    cancelling = h.cancelling()
    left = h.uncancel()
    log.push(f"finished: alive={b(alive)} cancel() -> {b(cancelled)}, "
             f"cancelling={cancelling}, uncancel -> {left}")

    async def six():
        return 6

    h = asyncio.create_task(six())
    await asyncio.sleep(0)
    alive = not h.done()
    cancelled = h.cancel()
    log.push(f"finished, not awaited: alive={b(alive)} cancel() -> {b(cancelled)}")
    log.push(f"then awaited: outcome {await join(h)}")


# ---- C07 ---------------------------------------------------------------------------


@case("C07", "asyncio")
async def c07(env):
    log = env.log()

    async def sleeper():
        await asyncio.sleep(100)
        return 1

    async def failing():
        raise MyError("x")

    async def fine():
        return 3

    cancelled = asyncio.create_task(sleeper())
    failed = asyncio.create_task(failing())
    ok = asyncio.create_task(fine())
    await asyncio.sleep(0)
    log.push(f"cancelled: cancel() -> {b(cancelled.cancel())}")
    o = await join(cancelled)
    log.push(f"cancelled: outcome {o} is_cancelled={b(cancelled.cancelled())}")
    o = await join(failed)
    log.push(f"failed: outcome {o} is_cancelled={b(failed.cancelled())}")
    log.push(f"fine: outcome {await join(ok)}")


# ---- C08 ---------------------------------------------------------------------------


@case("C08", "asyncio", differs="in asyncio a task that cancelled itself and returns "
      "without awaiting again ends cancelled (the pending cancel replaces its result); "
      "here the level rule applies: no checkpoint, no `Cancelled`, the task's value is "
      "kept (R2, R9); with a checkpoint both end cancelled")
async def c08(env):
    log = env.log()

    async def self_cancel():
        me = asyncio.current_task()
        me.cancel()
        log.push(f"task: cancelled itself, cancelling={me.cancelling()}")
        return "returned anyway"

    h = asyncio.create_task(self_cancel())
    log.push(f"outcome: {await join(h, debug=False)}")

    async def with_checkpoint():
        asyncio.current_task().cancel()
        await asyncio.sleep(0)
        return "not reached"

    h = asyncio.create_task(with_checkpoint())
    log.push(f"with a checkpoint: outcome {await join(h)}")
