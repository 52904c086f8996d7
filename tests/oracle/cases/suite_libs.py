"""Twins of the cases taken from the anchors' own test suites (issue 10): AnyIO's
``tests/test_taskgroups.py`` (run on both AnyIO backends) and CPython 3.11's
``test_asyncio/test_taskgroups.py`` and ``test_timeouts.py``. Each mirrors the test of
the same id in ``tests/conformance/suite_libs.rs``, event for event.

Words shared with the Rust side (helpers of ``suite_libs.rs``): a group's failures are
written ``[e1, e2]`` (a nested group in brackets, a timeout as ``TimedOut``, a
cancellation as ``Cancelled``); a group that absorbed its cancel returned ``None``, one
whose body ended returned ``Some(())``, one a cancellation went through returned
``Err(Cancelled)``."""

import asyncio

import anyio

from harness import case, budget


class MyError(Exception):
    """``MyError`` of ``tests/conformance/main.rs``: displays as ``my error: <what>``."""

    def __str__(self):
        return f"my error: {self.args[0]}"


def tf(b: bool) -> str:
    return "true" if b else "false"


def rust_debug(v) -> str:
    """A value as Rust's ``{:?}`` writes it (``()``, numbers, ASCII strings)."""
    if v is None:
        return "()"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(v)


def error_text(e: BaseException, cancelled=()) -> str:
    """An exception in the words of ``error_text`` in ``suite_libs.rs``."""
    if isinstance(e, BaseExceptionGroup):
        return "[" + ", ".join(error_text(x, cancelled) for x in e.exceptions) + "]"
    if isinstance(e, TimeoutError):
        return "TimedOut"
    if isinstance(e, (asyncio.CancelledError, *cancelled)):
        return "Cancelled"
    return str(e)


# ---- AnyIO tests/test_taskgroups.py ------------------------------------------------


@case("G30", "anyio")
async def g30(env):
    log = env.log()

    async def taskfunc(*, task_status):
        task_status.started(2)
        raise MyError("foo")

    try:
        async with anyio.create_task_group() as tg:
            try:
                v = await tg.start(taskfunc)
                log.push(f"start returned Ok({rust_debug(v)})")
            except BaseException as e:
                log.push(f"start returned Err({error_text(e, (anyio.get_cancelled_exc_class(),))})")
                raise
        log.push("group returned Some(())")
    except BaseExceptionGroup as eg:
        log.push(f"group returned Err(failures={error_text(eg)})")


@case("G31", "anyio")
async def g31(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def waiter():
        failed = False
        try:
            await anyio.sleep(5)
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"waiter: sleep cancelled={tf(failed)}")

    async def subgroup():
        try:
            async with anyio.create_task_group() as tg2:
                tg2.start_soon(waiter)
        except cancelled:
            log.push("subgroup: inner group returned Err(Cancelled)")
            raise
        log.push("subgroup: inner group returned Some(())")
        log.push("subgroup: after the inner group")

    completed = False
    async with anyio.create_task_group() as tg:
        tg.start_soon(subgroup)
        await anyio.sleep(1)
        tg.cancel_scope.cancel()
        log.push("body: cancelled the group")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")
    log.flags("group", tg.cancel_scope)


@case("G32", "anyio")
async def g32(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def taskfunc(*, task_status):
        log.push("child: started running")
        failed = False
        try:
            await anyio.sleep(2)
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"child: sleep cancelled={tf(failed)}")
        log.push("child: finished")

    completed = False
    async with anyio.create_task_group() as tg:
        tg.cancel_scope.cancel()
        try:
            v = await tg.start(taskfunc)
            log.push(f"start returned Ok({rust_debug(v)})")
        except BaseException as e:
            log.push(f"start returned Err({error_text(e, (cancelled,))})")
            raise
        log.push("body: after start")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")
    log.flags("group", tg.cancel_scope)


# The child (its checkpoint after `started`) and the caller of `start()` (resumed by
# `started`) are two tasks running at the same instant: their order is not fixed.
@case("G33", "anyio", order="tick")
async def g33(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    ev = anyio.Event()

    async def group_task(*, task_status):
        completed = False
        async with anyio.create_task_group() as b:
            task_status.started(b)
            await anyio.sleep(1000)
            completed = True
        log.push(f"group B returned {'Some(())' if completed else 'None'}")

    completed = False
    async with anyio.create_task_group() as tg:
        inner = await tg.start(group_task)

        async def just_wait(*, task_status):
            await ev.wait()
            failed = False
            try:
                await anyio.lowlevel.checkpoint()
            except cancelled:
                failed = True
                raise
            finally:
                log.push(f"child: checkpoint before started failed={tf(failed)}")
            task_status.started("started")
            failed = False
            try:
                await anyio.lowlevel.checkpoint()
            except cancelled:
                failed = True
                raise
            finally:
                log.push(f"child: checkpoint after started failed={tf(failed)}")
            log.push("child: not reached")

        async def outside_task():
            try:
                v = await inner.start(just_wait)
                log.push(f"outside task: start returned Ok({rust_debug(v)})")
            except BaseException as e:
                log.push(f"outside task: start returned Err({error_text(e, (cancelled,))})")
                raise

        tg.start_soon(outside_task)
        await anyio.sleep(1)
        inner.cancel_scope.cancel()
        ev.set()
        log.push("body: cancelled group B, set the event")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")


@case("G34", "anyio")
async def g34(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    ev = anyio.Event()

    async def taskfunc(*, task_status):
        failed = False
        with anyio.CancelScope(shield=True):
            try:
                await ev.wait()
            except cancelled:
                failed = True
                raise
            finally:
                log.push(f"child: shielded wait failed={tf(failed)}")
        failed = False
        try:
            await anyio.lowlevel.checkpoint()
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"child: checkpoint after shield failed={tf(failed)}")

    result = "None"
    with anyio.CancelScope() as outer:
        try:
            async with anyio.create_task_group() as tg:

                async def helper():
                    try:
                        v = await tg.start(taskfunc)
                        log.push(f"helper: start returned Ok({rust_debug(v)})")
                    except BaseException as e:
                        log.push(f"helper: start returned Err({error_text(e, (cancelled,))})")
                        raise

                tg.start_soon(helper)
                await anyio.sleep(1)
                outer.cancel()
                ev.set()
                log.push("body: cancelled the outer scope, set the event")
        except cancelled:
            log.push("group returned Err(Cancelled)")
            raise
        log.push("group returned Some(())")
        log.push("after the group")
        result = "Some(())"
    log.push(f"outer returned {result}")
    log.flags("outer", outer)


@case("G35", "anyio")
async def g35(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def sleep_and_raise():
        await anyio.sleep(1)
        log.push("child: fails")
        raise MyError("boom")

    async def sleep_only(*, task_status):
        failed = False
        try:
            await anyio.sleep(2)
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"start child: sleep cancelled={tf(failed)}")
        log.push("start child: sleep completed")
        task_status.started()

    try:
        async with anyio.create_task_group() as outer_tg:
            async with anyio.create_task_group() as inner_tg:
                inner_tg.start_soon(sleep_and_raise)
                try:
                    v = await outer_tg.start(sleep_only)
                    log.push(f"inner body: start returned Ok({rust_debug(v)})")
                except BaseException as e:
                    log.push(f"inner body: start returned Err({error_text(e, (cancelled,))})")
                    raise
            log.push("outer body: after the inner group")
        log.push("outer group returned Some(())")
    except BaseExceptionGroup as eg:
        log.push(f"outer group returned Err(failures={error_text(eg)})")


# AnyIO's two backends disagree here: on its trio backend the child's `Cancelled` for
# the parent scope leaves the group and the parent absorbs it, as here (R7); its asyncio
# backend lets the group end normally. So each backend has its own twin and verdict.
@case("G36", "anyio/trio")
@case("G36", "anyio/asyncio", differs="on its asyncio backend AnyIO 4.16 lets the group end normally "
      "(the child's cancellation for the parent scope stays inside the group, and the parent "
      "scope reports not caught); here, as on AnyIO's trio backend and in Trio, that "
      "`Cancelled` leaves the group and the parent scope absorbs it (R7)")
async def g36(env):
    log = env.log()
    cancelled_exc = anyio.get_cancelled_exc_class()
    cancelled = anyio.Event()

    async def wait_cancel():
        try:
            await anyio.sleep(1000)
        except cancelled_exc:
            log.push("child: cancelled")
            cancelled.set()
            raise

    result = "Ok(None)"
    with anyio.CancelScope() as parent:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait_cancel)
                await anyio.sleep(1)
                ok = False
                try:
                    with anyio.CancelScope(shield=True), anyio.fail_after(1):
                        parent.cancel()
                        await cancelled.wait()
                        log.push("host: saw the child's cancellation")
                    ok = True
                finally:
                    log.push(f"host: shielded block returned {'Some(())' if ok else 'Err(..)'}")
        except cancelled_exc:
            log.push("group returned Err(Cancelled)")
            raise
        log.push("group returned Some(())")
        result = "Ok(Some(()))"
    log.push(f"parent returned {result}")
    log.flags("parent", parent)


@case("S41", "anyio")
async def s41(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    result = "Ok(None)"
    with anyio.CancelScope() as outer:
        with anyio.CancelScope(shield=True) as inner:
            inner.cancel()
            failed = False
            try:
                await anyio.lowlevel.checkpoint()
            except cancelled:
                failed = True
                raise
            finally:
                outer.cancel()
                log.push(f"inner: checkpoint failed={tf(failed)}")
            log.push("inner: not reached")
        log.push(f"between the scopes: inner returned "
                 f"{'Ok(None)' if inner.cancelled_caught else 'Ok(Some(()))'}")
        result = "Ok(Some(()))"
    log.push(f"outer returned {result}")
    log.flags("inner", inner)
    log.flags("outer", outer)


@case("S42", "anyio")
async def s42(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def task(*, task_status):
        ok = False
        try:
            with anyio.CancelScope() as scope:
                await anyio.sleep(0.1)
                scope.shield = True
                task_status.started()
                await anyio.sleep(0.1)
                log.push("child: shielded sleep completed")
                scope.shield = False
                failed = False
                try:
                    await anyio.sleep(1)
                except cancelled:
                    failed = True
                    raise
                finally:
                    log.push(f"child: unshielded sleep failed={tf(failed)}")
                log.push("child: not reached")
            ok = True
        finally:
            if ok:
                log.push(f"child: scope returned "
                         f"{'Ok(None)' if scope.cancelled_caught else 'Ok(Some(()))'}")
            else:
                log.push("child: scope returned Err(Cancelled)")
            log.flags("child scope", scope)

    completed = False
    async with anyio.create_task_group() as tg:
        await tg.start(task)
        tg.cancel_scope.cancel()
        log.push("body: started, cancelled the group")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")
    log.flags("group", tg.cancel_scope)


@case("S43", "anyio")
async def s43(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    completed = False
    async with anyio.create_task_group() as tg:
        with anyio.CancelScope(shield=True):
            tg.cancel_scope.cancel()
            log.push(f"shielded: {budget(anyio.current_effective_deadline(), env.now())}")
            failed = False
            try:
                await anyio.lowlevel.checkpoint()
            except cancelled:
                failed = True
            log.push(f"shielded: checkpoint failed={tf(failed)}")
        log.push(f"after the shield: {budget(anyio.current_effective_deadline(), env.now())}")
        failed = False
        try:
            await anyio.sleep(0.01)
        except cancelled:
            failed = True
        log.push(f"after the shield: 1st sleep failed={tf(failed)}")
        failed = False
        try:
            await anyio.sleep(0.01)
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"after the shield: 2nd sleep failed={tf(failed)}")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")
    log.flags("group", tg.cancel_scope)


@case("D30", "anyio")
async def d30(env):
    log = env.log()
    try:
        async with anyio.create_task_group() as tg:
            with anyio.CancelScope() as scope:

                async def killer():
                    await anyio.sleep(0.1)
                    scope.cancel()
                    log.push("killer: cancelled the scope")

                try:
                    with anyio.CancelScope(shield=True):
                        tg.start_soon(killer)
                        with anyio.fail_after(0.2):
                            await anyio.sleep(2)
                except BaseException as e:
                    log.push(f"scope returned Err({error_text(e)})")
                    raise
            log.push(f"scope returned {'Ok(None)' if scope.cancelled_caught else 'Ok(Some(()))'}")
        log.push("group returned Some(())")
    except BaseExceptionGroup as eg:
        log.push(f"group returned Err(failures={error_text(eg)})")
    log.flags("scope", scope)


@case("D31", "anyio")
async def d31(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def child():
        failed = False
        try:
            await anyio.sleep(2)
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"child: sleep failed={tf(failed)}")

    try:
        with anyio.fail_after(0.1):
            async with anyio.create_task_group() as tg:
                tg.start_soon(child)
                await anyio.sleep(2)
        log.push("fail_after returned Ok(())")
    except BaseException as e:
        log.push(f"fail_after returned Err({error_text(e, (cancelled,))})")


@case("D32", "anyio")
async def d32(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    event = anyio.Event()
    completed = False
    async with anyio.create_task_group() as tg:
        tg.cancel_scope.cancel()
        await event.wait()
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")
    try:
        with anyio.fail_after(0.1):
            await anyio.sleep(0.5)
            log.push("block complete")
        log.push("fail_after returned Ok(())")
    except BaseException as e:
        log.push(f"fail_after returned Err({error_text(e, (cancelled,))})")


@case("D33", "anyio", differs="AnyIO's `fail_after` raises `TimeoutError` only if its deadline "
      "has passed, so an explicit `cancel()` of its scope is swallowed silently; here, as in "
      "Trio's `fail_after`, any cancellation the scope absorbs becomes `TimedOut` (with the "
      "reason, here `cancelled explicitly`)")
async def d33(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    try:
        with anyio.fail_after(1) as scope:
            scope.cancel()
            await anyio.lowlevel.checkpoint()
        log.push("fail_after returned Ok(())")
    except BaseException as e:
        log.push(f"fail_after returned Err({error_text(e, (cancelled,))})")
    log.flags("scope", scope)


# ---- CPython 3.11 test_asyncio/test_timeouts.py ---------------------------------------


def result_text(e: BaseException | None) -> str:
    """A ``Result<(), BoxError>`` in the words of ``result`` in ``suite_libs.rs``."""
    return "Ok(())" if e is None else f"Err({error_text(e)})"


def task_end(task: asyncio.Task) -> str:
    """How a task ended, in the words of ``outcome`` in ``suite_libs.rs``."""
    if task.cancelled():
        return "Cancelled"
    e = task.exception()
    if e is None:
        return f"Ok({rust_debug(task.result())})"
    return f"Err({error_text(e)})"


async def settle(task: asyncio.Task) -> None:
    """Awaits a task, whatever it raises (its outcome is read with ``task_end``)."""
    try:
        await task
    except BaseException:
        pass


@case("D34", "asyncio")
async def d34(env):
    log = env.log()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.01
    outer_exc = None
    try:
        async with asyncio.timeout_at(deadline) as cm1:
            inner_exc = None
            try:
                async with asyncio.timeout_at(deadline) as cm2:
                    await asyncio.sleep(10)
            except BaseException as e:
                inner_exc = e
                raise
            finally:
                log.push(f"inner returned {result_text(inner_exc)}")
    except BaseException as e:
        outer_exc = e
    log.push(f"outer returned {result_text(outer_exc)}")
    log.push(f"inner expired={tf(cm2.expired())} outer expired={tf(cm1.expired())}")


@case("D35", "asyncio")
async def d35(env):
    log = env.log()

    async def crash():
        failed = False
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            failed = True
            raise
        finally:
            log.push(f"crash: sleep failed={tf(failed)}")
            raise MyError("crash")

    exc = None
    try:
        async with asyncio.timeout(0.01):
            await crash()
    except BaseException as e:
        exc = e
    log.push(f"timeout returned {result_text(exc)}")


@case("D36", "asyncio")
async def d36(env):
    log = env.log()

    async def body():
        exc = None
        try:
            async with asyncio.timeout(10) as cm:
                asyncio.current_task().cancel()
                await asyncio.sleep(10)
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"timeout returned {result_text(exc)}")
            log.push(f"timeout expired={tf(cm.expired())}")

    task = asyncio.create_task(body())
    await settle(task)
    log.push(f"task ended {task_end(task)}")


@case("D37", "asyncio")
async def d37(env):
    log = env.log()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    fut = loop.create_future()

    def when(cm):
        w = cm.when()
        if w is None:
            return "None"
        d = w - t0
        return f"{int(d)}s" if d == int(d) else f"{d}s"

    async def f():
        exc = None
        try:
            async with asyncio.timeout_at(t0 + 10) as cm:
                fut.set_result(cm)
                await asyncio.sleep(50)
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"task: timeout returned {result_text(exc)}")

    task = asyncio.create_task(f())
    await asyncio.sleep(1)
    cm = await fut
    log.push(f"when={when(cm)}")
    cm.reschedule(t0 + 30)
    log.push(f"when={when(cm)}")
    cm.reschedule(None)
    log.push(f"when={when(cm)}")
    await asyncio.sleep(34)
    log.push(f"task running={tf(not task.done())}")
    task.cancel()
    await settle(task)
    log.push(f"task ended {task_end(task)}")
    log.push(f"expired={tf(cm.expired())}")


@case("D38", "asyncio", differs="asyncio delivers a cancel once, so the cleanup's sleep runs "
      "and its own 10 ms timeout fires (both timeouts raise `TimeoutError`, at 20 ms); here "
      "the outer timeout's cancel stays in force (level-triggered, R2): the cleanup's sleep "
      "fails at once and that cancellation passes the inner timeout, at 10 ms")
async def d38(env):
    log = env.log()
    exc = None
    try:
        async with asyncio.timeout(0.01):
            failed = False
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                failed = True
                raise
            finally:
                log.push(f"body: sleep failed={tf(failed)}")
                inner = None
                try:
                    async with asyncio.timeout(0.01):
                        await asyncio.sleep(10)
                except BaseException as e:
                    inner = e
                log.push(f"cleanup: inner timeout returned {result_text(inner)}")
    except BaseException as e:
        exc = e
    log.push(f"outer timeout returned {result_text(exc)}")


@case("C09", "asyncio", differs="asyncio delivers the task's cancel once and `timeout()` "
      "compares cancel counts, so after the swallowed `CancelledError` the cleanup's "
      "`timeout(0)` raises `TimeoutError`; here the task's cancel request stays in force until "
      "`uncancel()` (R2, R9), so the cleanup's sleep fails with it and it passes the timeout")
async def c09(env):
    log = env.log()

    async def body():
        asyncio.current_task().cancel()
        failed = False
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            failed = True
        log.push(f"work: sleep failed={tf(failed)}, swallowed; "
                 f"cancelling={asyncio.current_task().cancelling()}")
        exc = None
        try:
            async with asyncio.timeout(0):
                await asyncio.sleep(1)
        except BaseException as e:
            exc = e
        log.push(f"cleanup: timeout(0) returned {result_text(exc)}")

    task = asyncio.create_task(body())
    await settle(task)
    log.push(f"task ended {task_end(task)}")


@case("C10", "asyncio")
async def c10(env):
    log = env.log()

    async def body():
        asyncio.current_task().cancel()
        failed = False
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            failed = True
        log.push(f"work: sleep failed={tf(failed)}, swallowed; "
                 f"cancelling={asyncio.current_task().cancelling()}")
        exc = None
        try:
            async with asyncio.timeout(1.0):
                asyncio.current_task().cancel()
                log.push(f"cleanup: cancelled again; "
                         f"cancelling={asyncio.current_task().cancelling()}")
                await asyncio.sleep(2)
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"cleanup: timeout returned {result_text(exc)}; "
                     f"cancelling={asyncio.current_task().cancelling()}")

    task = asyncio.create_task(body())
    await settle(task)
    log.push(f"task ended {task_end(task)}")


# ---- CPython 3.11 test_asyncio/test_taskgroups.py -------------------------------------


def group_text(exc: BaseException | None, completed: bool) -> str:
    """What a group returned, in the words of ``group_result`` in ``suite_libs.rs``."""
    if exc is None:
        return "Some(())" if completed else "None"
    if isinstance(exc, asyncio.CancelledError):
        return "Err(Cancelled)"
    return f"Err(failures={error_text(exc)})"


# The body and the children are woken by the same task cancel: their order is the
# runtime's (asyncio cancels the body first, then the children from `__aexit__`).
@case("C11", "asyncio", order="tick")
async def c11(env):
    log = env.log()

    async def child(name):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            log.push(f"{name}: cancelled")
            raise

    async def runner():
        exc = None
        try:
            async with asyncio.TaskGroup() as g:
                for name in ("child 1", "child 2"):
                    g.create_task(child(name))
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    log.push("body: cancelled")
                    raise
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"group returned {group_text(exc, True)}; "
                     f"cancelling={asyncio.current_task().cancelling()}")

    r = asyncio.create_task(runner())
    await asyncio.sleep(0.1)
    r.cancel()
    await settle(r)
    log.push(f"task ended {task_end(r)}")


# The two children fail at the same instant, in an order neither runtime fixes: each
# failure is its own event, and the task's end is recorded as a count.
@case("C12", "asyncio", order="tick")
async def c12(env):
    log = env.log()

    async def foo(name):
        try:
            await asyncio.sleep(10)
        finally:
            raise MyError(name)

    async def runner():
        exc = None
        try:
            async with asyncio.TaskGroup() as g:
                for name in ("a", "b"):
                    g.create_task(foo(name))
                await asyncio.sleep(10)
        except BaseException as e:
            exc = e
            raise
        finally:
            if isinstance(exc, BaseExceptionGroup):
                for x in exc.exceptions:
                    log.push(f"group failure: {error_text(x)}")
            else:
                log.push(f"group returned {group_text(exc, True)}")

    r = asyncio.create_task(runner())
    await asyncio.sleep(0.1)
    r.cancel()
    await settle(r)
    e = None if r.cancelled() else r.exception()
    if isinstance(e, BaseExceptionGroup):
        log.push(f"task ended Err({len(e.exceptions)} failures)")
    else:
        log.push(f"task ended {task_end(r)}")


@case("C13", "asyncio")
async def c13(env):
    log = env.log()

    async def runner():
        exc = None
        try:
            async with asyncio.TaskGroup():
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    log.push("body: cancelled, fails instead")
                    raise MyError("body")
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"group returned {group_text(exc, True)}")

    r = asyncio.create_task(runner())
    await asyncio.sleep(0.1)
    r.cancel()
    await settle(r)
    log.push(f"task ended {task_end(r)}")


@case("C14", "asyncio", differs="asyncio delivers the task's cancel once, to the body only "
      "(the children are cancelled when the body leaves the block): the body's 500 ms cleanup "
      "sleep runs, the child fails at 300 ms and its error cuts the cleanup short, and the "
      "group raises that error; here the task's cancel stays in force (R2) and reaches the "
      "group's children: the cleanup sleep and the child's sleep fail at once, and the task "
      "ends cancelled at 100 ms")
async def c14(env):
    log = env.log()

    async def crash_soon():
        failed = False
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            failed = True
            raise
        finally:
            log.push(f"crash_soon: sleep failed={tf(failed)}")
        raise MyError("crash")

    async def runner():
        exc = None
        try:
            async with asyncio.TaskGroup() as g1:
                g1.create_task(crash_soon())
                try:
                    await asyncio.sleep(10)
                except asyncio.CancelledError:
                    failed = False
                    try:
                        await asyncio.sleep(0.5)
                    except asyncio.CancelledError:
                        failed = True
                    log.push(f"body: cancelled; cleanup sleep failed={tf(failed)}")
                    raise
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"group returned {group_text(exc, True)}")

    r = asyncio.create_task(runner())
    await asyncio.sleep(0.1)
    r.cancel()
    await settle(r)
    log.push(f"task ended {task_end(r)}")


@case("G37", "asyncio")
async def g37(env):
    log = env.log()

    async def crash_after(t, name, note=False):
        failed = False
        try:
            await asyncio.sleep(t)
        except asyncio.CancelledError:
            failed = True
            raise
        finally:
            if note:
                log.push(f"inner child: sleep failed={tf(failed)}")
        raise MyError(name)

    exc = None
    try:
        async with asyncio.TaskGroup() as g1:
            g1.create_task(crash_after(0.1, "0.1"))
            inner = None
            try:
                async with asyncio.TaskGroup() as g2:
                    g2.create_task(crash_after(10, "10", note=True))
            except BaseException as e:
                inner = e
                raise
            finally:
                log.push(f"inner group returned {group_text(inner, True)}")
    except BaseException as e:
        exc = e
    log.push(f"outer group returned {group_text(exc, True)}")


@case("G38", "asyncio")
async def g38(env):
    log = env.log()

    async def crash_soon():
        await asyncio.sleep(0.1)
        raise MyError("crash_soon")

    async def nested():
        try:
            await asyncio.sleep(10)
        finally:
            raise MyError("nested")

    exc = None
    try:
        async with asyncio.TaskGroup() as g:
            g.create_task(crash_soon())
            await nested()
    except BaseException as e:
        exc = e
    log.push(f"group returned {group_text(exc, True)}")


# ---- more from AnyIO tests/test_taskgroups.py -----------------------------------------


def scope_text(scope, completed: bool) -> str:
    """What a scope returned, in the words of ``scope_result`` in ``suite_libs.rs``:
    ``Ok(Some(()))`` if its body ended, ``Ok(None)`` if it absorbed a cancel (called only
    when the scope's ``with`` block was left without an exception)."""
    return "Ok(Some(()))" if completed else ("Ok(None)" if scope.cancelled_caught else "Ok(..)")


@case("S44", "anyio")
async def s44(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    completed1 = False
    with anyio.CancelScope() as s1:
        completed2 = False
        try:
            with anyio.CancelScope() as s2:
                with anyio.CancelScope(shield=True):
                    s1.cancel()
                    s2.cancel()
                    failed = False
                    try:
                        await anyio.lowlevel.checkpoint()
                    except cancelled:
                        failed = True
                        raise
                    finally:
                        log.push(f"shielded: checkpoint failed={tf(failed)}")
                log.push("scope 2: after the shield")
                completed2 = True
        except cancelled:
            log.push("scope 2 returned Err(Cancelled)")
            raise
        log.push(f"scope 2 returned {scope_text(s2, completed2)}")
        failed = False
        try:
            await anyio.lowlevel.checkpoint()
        except cancelled:
            failed = True
            raise
        finally:
            log.push(f"scope 1: checkpoint failed={tf(failed)}")
        log.push("scope 1: got past the checkpoint")
        completed1 = True
    log.push(f"scope 1 returned {scope_text(s1, completed1)}")
    log.flags("scope 1", s1)
    log.flags("scope 2", s2)


@case("S45", "anyio")
async def s45(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()
    completed1 = False
    with anyio.CancelScope() as s1:
        completed2 = False
        try:
            with anyio.CancelScope() as s2:
                with anyio.CancelScope(shield=True):
                    s1.cancel()
                    failed = False
                    try:
                        await anyio.lowlevel.checkpoint()
                    except cancelled:
                        failed = True
                        raise
                    finally:
                        log.push(f"shielded: checkpoint failed={tf(failed)}")
                failed = False
                try:
                    await anyio.lowlevel.checkpoint()
                except cancelled:
                    failed = True
                    raise
                finally:
                    log.push(f"scope 2: checkpoint failed={tf(failed)}")
                log.push("scope 2: got past the checkpoint")
                completed2 = True
        except cancelled:
            log.push("scope 2 returned Err(Cancelled)")
            raise
        log.push(f"scope 2 returned {scope_text(s2, completed2)}")
        completed1 = True
    log.push(f"scope 1 returned {scope_text(s1, completed1)}")
    log.flags("scope 1", s1)
    log.flags("scope 2", s2)


@case("S46", "anyio")
async def s46(env):
    log = env.log()
    completed = False
    with anyio.CancelScope() as scope:
        done = False
        with anyio.move_on_after(0.1) as inner:
            await anyio.sleep(1)
            done = True
        log.push(f"move_on_after returned {scope_text(inner, done)}")
        log.flags("move_on_after", inner)
        scope.cancel()
        completed = True
    log.push(f"scope returned {scope_text(scope, completed)}")
    log.flags("scope", scope)


@case("G39", "anyio")
async def g39(env):
    log = env.log()
    ran = False

    async def outer_task():
        nonlocal ran
        ran = True

    completed = False
    async with anyio.create_task_group() as tg_outer:
        for _ in range(2):
            async with anyio.create_task_group():
                tg_outer.start_soon(outer_task)
        log.push(f"outer task ran={tf(ran)}")
        completed = True
    log.push(f"group returned {'Some(())' if completed else 'None'}")


@case("G40", "anyio")
async def g40(env):
    log = env.log()
    cancelled = anyio.get_cancelled_exc_class()

    async def child():
        done = False
        try:
            with anyio.CancelScope() as cs:
                await anyio.sleep(1)
                done = True
        except cancelled:
            log.push("child: scope returned Err(Cancelled)")
            raise
        log.push(f"child: scope returned {scope_text(cs, done)}")
        log.push("child: fails")
        raise MyError("foo")

    async def parent(tg):
        done = False
        with anyio.CancelScope(shield=True) as cs:
            await anyio.sleep(0.1)
            done = True
        log.push(f"parent: shielded wait returned {scope_text(cs, done)}")
        tg.start_soon(child)

    completed = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(parent, tg)
            tg.cancel_scope.cancel()
            completed = True
        log.push(f"group returned {'Some(())' if completed else 'None'}")
    except BaseExceptionGroup as eg:
        log.push(f"group returned Err(failures={error_text(eg)})")
    log.flags("group", tg.cancel_scope)


# ---- more from CPython 3.11 test_asyncio/test_taskgroups.py ----------------------------


@case("G41", "asyncio")
async def g41(env):
    log = env.log()

    async def foo1():
        failed = False
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            failed = True
            raise
        finally:
            log.push(f"foo1: sleep failed={tf(failed)}")
        return 42

    async def foo2():
        await asyncio.sleep(0.2)
        log.push("foo2: returns 11")
        return 11

    exc = None
    try:
        async with asyncio.TaskGroup() as g:
            t1 = g.create_task(foo1())
            await asyncio.sleep(0.15)
            t1.cancel()
            g.create_task(foo2())
            log.push("body: done")
    except BaseException as e:
        exc = e
    log.push(f"group returned {group_text(exc, True)}")


@case("C15", "asyncio")
async def c15(env):
    log = env.log()

    async def foo():
        try:
            await asyncio.sleep(10)
        finally:
            raise MyError("cleanup")

    async def runner():
        exc = None
        try:
            async with asyncio.TaskGroup():
                async with asyncio.TaskGroup() as g2:
                    g2.create_task(foo())
                    await asyncio.sleep(10)
        except BaseException as e:
            exc = e
            raise
        finally:
            log.push(f"outer group returned {group_text(exc, True)}")

    r = asyncio.create_task(runner())
    await asyncio.sleep(0.1)
    r.cancel()
    await settle(r)
    log.push(f"task ended {task_end(r)}")
