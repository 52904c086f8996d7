"""Twins of the X cases anchored on Trio, AnyIO or asyncio (``tests/conformance/extra.rs``).
Each mirrors the test of the same id, event for event.

asyncio 3.11 has no way to cancel a ``TaskGroup`` from its body; X13 and X18 use
``TaskGroup._abort()``, which is what the group itself does when a child fails (and what
the 3.15 ``TaskGroup.cancel()`` builds on). A task's cancel (``TaskHandle::cancel``) is
played on Trio as a cancel scope around the task's code (X12)."""

import asyncio

import trio

from harness import case, b, group_result, reason

from .scopes import debug_reason, scope_result


class MyError(Exception):
    """``MyError`` of ``tests/conformance/main.rs``: displays as ``my error: <what>``."""

    def __str__(self):
        return f"my error: {self.args[0]}"


class Panic(Exception):
    """Plays a Rust panic (X15)."""


def rust_secs(x: float) -> str:
    """A duration in seconds as Rust's ``Duration`` ``{:?}`` writes it."""
    if x == int(x):
        return f"{int(x)}s"
    return f"{x * 1000:g}ms"


# ---- X04 ---------------------------------------------------------------------------


@case("X04", "trio", order="tick")
async def x04(env):
    log = env.log()

    async def outer_child():
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            log.push("outer child: cancelled=true")
            raise
        log.push("outer child: cancelled=false")

    async def inner_child():
        await trio.sleep(1)
        log.push("inner child: slept 1s")

    completed = False
    async with trio.open_nursery() as outer:
        outer.start_soon(outer_child)
        outer.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as inner:
                inner.start_soon(inner_child)
                await trio.lowlevel.checkpoint()
                log.push("inner body: checkpoint ok")
            log.push("shielded: inner group done")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("outer body: checkpoint after the shield failed")
            raise
        completed = True
    log.push(f"outer returned {group_result(completed)}")
    log.flags("outer", outer.cancel_scope)
    log.flags("inner", inner.cancel_scope)


# ---- X05 ---------------------------------------------------------------------------


@case("X05", "trio")
async def x05(env):
    log = env.log()
    t0 = trio.current_time()
    completed = False
    with trio.CancelScope(relative_deadline=1) as outer:
        shielded_completed = False
        with trio.CancelScope(shield=True, relative_deadline=3) as shielded:
            d = trio.current_effective_deadline()
            shown = "None" if d == float("inf") else f"Some({rust_secs(d - t0)})"
            log.push(f"shielded: effective deadline {shown}")
            try:
                await trio.sleep(10)
            except trio.Cancelled as c:
                log.push(f"shielded: sleep failed ({reason(c)})")
                raise
            shielded_completed = True
        log.push(f"shielded returned {scope_result(shielded, shielded_completed)}")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as c:
            log.push(f"outer: checkpoint failed ({reason(c)})")
            raise
        completed = True
    log.push(f"outer returned {scope_result(outer, completed)}")
    log.flags("shielded", shielded)
    log.flags("outer", outer)

    # Unshield after the outer deadline passed.
    t1 = trio.current_time()
    outer = trio.CancelScope(deadline=t1 + 1)
    shielded = trio.CancelScope(shield=True, deadline=t1 + 5)

    async def helper():
        await trio.sleep(2)
        shielded.shield = False

    async with trio.open_nursery() as top:  # hosts the spawned helper
        top.start_soon(helper)
        completed = False
        with outer:
            ok = False
            try:
                with shielded:
                    await trio.sleep(10)
                ok = True
            finally:
                log.push(f"unshielded: scope returned Ok? {b(ok)}")
            completed = True
    log.push(f"outer returned {scope_result(outer, completed)}")
    log.flags("unshielded", shielded)
    log.flags("outer", outer)


# ---- X06 ---------------------------------------------------------------------------


@case("X06", "trio")
async def x06(env):
    log = env.log()
    outer = trio.CancelScope()
    inner = trio.CancelScope()

    async def helper():
        await trio.sleep(1)
        inner.shield = True
        await trio.sleep(1)
        outer.cancel()

    async with trio.open_nursery() as top:  # hosts the spawned helper
        top.start_soon(helper)
        completed = False
        with outer:
            with inner:
                await trio.sleep(5)
                log.push("inner: slept 5s undisturbed")
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled:
                log.push("outer: checkpoint failed")
                raise
            completed = True
    log.push(f"outer returned {scope_result(outer, completed)}")
    log.flags("inner", inner)
    log.flags("outer", outer)


# ---- X07 ---------------------------------------------------------------------------


@case("X07", "trio")
async def x07(env):
    log = env.log()

    async def bad():
        await trio.sleep(1)
        raise MyError("bad")

    try:
        async with trio.open_nursery() as group:
            group.start_soon(bad)
            await trio.sleep(100)
        log.push("group returned Ok(..)")
    except BaseExceptionGroup as eg:
        cancellation = eg.split(trio.Cancelled)[0] is not None
        failures = ", ".join(f'"{e}"' for e in eg.exceptions)
        log.push(f"group failed: cancellation={b(cancellation)} failures=[{failures}]")
    log.flags("group", group.cancel_scope)


# ---- X10 ---------------------------------------------------------------------------


@case("X10", "trio")
async def x10(env):
    log = env.log()
    stash = None
    completed = False
    with trio.CancelScope() as first:
        first.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as c:
            stash = c
            raise
        completed = True
    log.push(f"first returned {scope_result(first, completed)}")

    second = trio.CancelScope()
    second.cancel()
    completed = False
    with second:
        raise stash
    log.push(f"second returned {scope_result(second, completed)}")
    log.flags("second", second)

    try:
        with trio.CancelScope() as third:
            raise stash
        log.push(f"third returned {scope_result(third, False)}")
    except trio.Cancelled as c:
        log.push(f"third returned {'Err(Cancelled)' if c is stash else 'Err(<another>)'}")
    log.flags("third", third)


# ---- X11 ---------------------------------------------------------------------------


@case("X11", "trio", order="tick")
async def x11(env):
    log = env.log()

    async def child():
        try:
            await trio.sleep(100)
        except trio.Cancelled as c:
            log.push(f"child: Err({debug_reason(c)})")
            raise
        log.push("child: Ok(())")

    completed = False
    async with trio.open_nursery() as group:
        # A Trio nursery exists only inside its block: its deadline is set first thing.
        group.cancel_scope.deadline = trio.current_time() + 2
        group.start_soon(child)
        try:
            await trio.sleep(100)
        except trio.Cancelled as c:
            log.push(f"body: Err({debug_reason(c)})")
            raise
        log.push("body: Ok(())")
        completed = True
    log.push(f"group returned {group_result(completed)}")
    log.flags("group", group.cancel_scope)


# ---- X12 ---------------------------------------------------------------------------


@case("X12", "trio")
async def x12(env):
    # The task's own cancel (`TaskHandle::cancel`, one request) is a cancel scope around
    # the task's code; `cancelling` is 1 once that scope has been cancelled.
    log = env.log()
    task_scope = trio.CancelScope()
    ended = trio.Event()

    async def task():
        with task_scope:
            with trio.CancelScope(shield=True):
                await trio.sleep(3)
                log.push(f"shielded: slept 3s, cancelling={1 if task_scope.cancel_called else 0}")
            failed = True
            try:
                await trio.lowlevel.checkpoint()
                failed = False
            finally:
                log.push(f"after shield: checkpoint failed={b(failed)}")
        ended.set()

    async with trio.open_nursery() as top:
        top.start_soon(task)
        await trio.sleep(1)
        task_scope.cancel()
        await ended.wait()
        log.push(f"task ended cancelled={b(task_scope.cancelled_caught)}")


# ---- X13 ---------------------------------------------------------------------------


@case("X13", "asyncio", differs="asyncio's `TaskGroup` cancels each child with "
      "`Task.cancel()`, so a child that catches the `CancelledError` and calls `uncancel()` "
      "runs on; here the group's scope stays cancelled (level-triggered, R2) and task counts "
      "are separate from scopes (R9)")
async def x13(env):
    log = env.log()

    async def child():
        try:
            await asyncio.sleep(100)
            return
        except asyncio.CancelledError:
            pass
        left = asyncio.current_task().uncancel()
        failed = True
        try:
            await asyncio.sleep(0)
            failed = False
        finally:
            log.push(f"child: uncancel -> {left}, checkpoint failed={b(failed)}")

    completed = False
    async with asyncio.TaskGroup() as tg:
        tg.create_task(child())
        await asyncio.sleep(0.01)
        tg._abort()  # the group's own cancel (no public API in 3.11)
        completed = True
    log.push(f"group returned {group_result(completed)}")


# ---- X15 ---------------------------------------------------------------------------


@case("X15", "trio")
async def x15(env):
    log = env.log()

    async def child():
        try:
            try:
                await trio.sleep(100)
            except trio.Cancelled:
                log.push("child: cancelled")
                with trio.CancelScope(shield=True):
                    await trio.sleep(1)
                log.push("child: cleanup done")
                raise
        finally:
            log.push("child dropped")

    async def host():
        try:
            async with trio.open_nursery() as group:
                group.start_soon(child)
                await trio.sleep(1)
                log.push("body: panics")
                raise Panic("body boom")
            log.push("host returned")
        except BaseExceptionGroup as eg:
            panics = [e for e in eg.exceptions if isinstance(e, Panic)]
            if panics and len(eg.exceptions) == 1:
                log.push(f"host panicked: {panics[0]}")
            else:
                log.push(f"host failed: {eg!r}")

    async with trio.open_nursery() as top:
        top.start_soon(host)


# ---- X16 ---------------------------------------------------------------------------


@case("X16", "trio")
async def x16(env):
    log = env.log()
    completed = False
    with trio.CancelScope() as outer:
        try:
            with trio.CancelScope() as inner:
                inner.cancel("inner")
                try:
                    await trio.lowlevel.checkpoint()
                except trio.Cancelled:
                    outer.cancel("outer")  # while the inner Cancelled travels
                    raise
            log.push(f"inner returned Ok({'None' if inner.cancelled_caught else 'Some(())'})")
        except trio.Cancelled:
            log.push('inner returned Err("Cancelled")')
            raise
        log.push("after the inner scope (must not run)")
        completed = True
    log.push(f"outer returned {scope_result(outer, completed)}")
    log.flags("inner", inner)
    log.flags("outer", outer)


# ---- X17 ---------------------------------------------------------------------------


@case("X17", "trio")
async def x17(env):
    log = env.log()
    completed = False
    with trio.CancelScope() as outer:

        async def child():
            failed = True
            try:
                await trio.sleep(10)
                failed = False
            finally:
                log.push(f"child: sleep cancelled={b(failed)}")
                with trio.CancelScope(shield=True):
                    await trio.sleep(1)
                    outer.cancel("outer")

        propagates = False
        try:
            async with trio.open_nursery() as group:
                group.start_soon(child)
                await trio.lowlevel.cancel_shielded_checkpoint()  # yield_now()
                group.cancel_scope.cancel()
        except BaseException:
            propagates = True
            raise
        finally:
            log.push(f"group: propagates={b(propagates)}")
        log.push("after the group (must not run)")
        completed = True
    log.push(f"outer returned {scope_result(outer, completed)}")
    log.flags("outer", outer)
    log.flags("group", group.cancel_scope)


# ---- X18 ---------------------------------------------------------------------------


@case("X18", "asyncio", differs="asyncio 3.11's `TaskGroup`, once aborting its children "
      "(here by `_abort()`, its own cancel), swallows a `Task.cancel()` of its host task that "
      "arrives while it waits for them: the group returns normally and the task runs on with "
      "`cancelling() == 1`; here that task cancel comes out of the group and the task ends "
      "cancelled (R4, R9)")
async def x18(env):
    log = env.log()

    async def child():
        try:
            await asyncio.sleep(10)
        finally:
            # Our child's cleanup is shielded; nothing cancels this one again either.
            await asyncio.sleep(1)

    async def host():
        propagates = False
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(child())
                await asyncio.sleep(0)  # yield_now()
                tg._abort()  # the group's own cancel (no public API in 3.11)
        except BaseException:
            propagates = True
            raise
        finally:
            log.push(f"group: propagates={b(propagates)} "
                     f"cancelling={asyncio.current_task().cancelling()}")
        log.push("after the group (must not run)")

    h = asyncio.create_task(host())
    await asyncio.sleep(0.5)
    h.cancel()
    try:
        await h
    except asyncio.CancelledError:
        pass
    log.push(f"host ended cancelled={b(h.cancelled())}")
