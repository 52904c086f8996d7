"""Twins of S21–S25, D14–D19, G20–G29 (``tests/conformance/suite_trio.rs``): cases
taken from Trio's own test suite (``_core/_tests/test_run.py``,
``_tests/test_timeouts.py``), played on Trio.

Translation of results: a scope that absorbed a ``Cancelled`` returned ``Ok(None)``; a
body that ran to its end ``Ok(Some(..))``; a ``Cancelled`` leaving a scope
``Err(Cancelled)``; a nursery's ``ExceptionGroup`` ``Err(failures=[..])`` with its
non-``Cancelled`` members (our ``TaskGroupError::failures()``).
"""

import math

import trio

from harness import case, b, budget


class MyError(Exception):
    """``MyError`` of ``tests/conformance/main.rs``: displays as ``my error: <what>``."""

    def __str__(self):
        return f"my error: {self.args[0]}"


async def cp_failed() -> str:
    """Whether a checkpoint raised ``Cancelled`` (swallowed, as the Rust test ignores it)."""
    try:
        await trio.lowlevel.checkpoint()
    except trio.Cancelled:
        return "true"
    return "false"


def secs(x) -> str:
    """A duration as Rust's ``{:?}`` writes whole seconds."""
    return f"{int(x)}s" if x == int(x) else f"{x}s"


def failures(eg: BaseExceptionGroup) -> list:
    """The non-``Cancelled`` leaves of an exception group, in order."""
    out = []
    for e in eg.exceptions:
        if isinstance(e, BaseExceptionGroup):
            out.extend(failures(e))
        elif not isinstance(e, trio.Cancelled):
            out.append(e)
    return out


def group_result(completed: bool, exc: BaseException | None, value="()") -> str:
    """What our group returns: ``Ok(Some(value))`` if its body ran to its end and nothing
    came out, ``Ok(None)`` if its cancel was absorbed, ``Err(..)`` otherwise."""
    if exc is None:
        return f"Ok(Some({value}))" if completed else "Ok(None)"
    if isinstance(exc, trio.Cancelled):
        return "Err(Cancelled)"
    if isinstance(exc, BaseExceptionGroup):
        errs = failures(exc)
        if not errs:
            return "Err(Cancelled)"
        return "Err(failures=[" + ", ".join(str(e) for e in errs) + "])"
    return f"Err(<{type(exc).__name__}: {exc}>)"


async def run_group(body):
    """Runs ``body(nursery)`` in a nursery; returns (completed, exception that came out)."""
    completed = False
    try:
        async with trio.open_nursery() as nursery:
            await body(nursery)
            completed = True
    except BaseException as e:  # noqa: BLE001 - translated, and re-raised by callers
        return completed, e
    return completed, None


async def sleeper(log, name):
    try:
        await trio.sleep(1000)
    except trio.Cancelled:
        log.push(f"{name} cancelled")
        raise
    log.push(f"{name} done")


# ---- S -------------------------------------------------------------------------------


@case("S21", "trio")
async def s21(env):
    log = env.log()
    with trio.CancelScope() as outer:
        ok = False
        try:
            with trio.CancelScope() as inner:
                log.push(f"before cancel: checkpoint failed={await cp_failed()}")
                outer.cancel()
                log.push(f"outer cancelled: checkpoint failed={await cp_failed()}")
                inner.shield = True
                log.push(f"shield on: checkpoint failed={await cp_failed()}")
                with trio.CancelScope() as innermost:
                    innermost.cancel()
                    try:
                        await trio.lowlevel.checkpoint()
                    except trio.Cancelled:
                        log.push("innermost cancelled: checkpoint failed=true")
                        raise
                    log.push("innermost cancelled: checkpoint failed=false")
                log.push("innermost returned Ok(None)" if innermost.cancelled_caught
                         else "innermost returned Ok(Some(()))")
                log.flags("innermost", innermost)
                log.push(f"after innermost: checkpoint failed={await cp_failed()}")
                inner.shield = False
                log.push(f"shield off: checkpoint failed={await cp_failed()}")
                inner.shield = True
                log.push(f"shield on again: checkpoint failed={await cp_failed()}")
                inner.cancel()
                try:
                    await trio.lowlevel.checkpoint()
                except trio.Cancelled:
                    log.push("inner cancelled: checkpoint failed=true")
                    raise
                log.push("inner cancelled: checkpoint failed=false")
            ok = True
        finally:
            if ok:
                log.push("inner returned Ok(None)" if inner.cancelled_caught
                         else "inner returned Ok(Some(()))")
            else:
                log.push("inner returned Err(Cancelled)")
        completed = True
    log.push("outer returned Ok(Some(()))" if completed and not outer.cancelled_caught
             else "outer returned Ok(None)")
    log.flags("inner", inner)
    log.flags("outer", outer)


@case("S22", "trio")
async def s22(env):
    log = env.log()
    ok = False
    with trio.CancelScope() as outer:
        async with trio.open_nursery() as nursery:
            outer.cancel()
            nursery.cancel_scope.shield = True

            async def child():
                log.push("child: sleeping")
                try:
                    await trio.sleep(1000)
                except trio.Cancelled:
                    log.push("child: cancelled")

            nursery.start_soon(child)
            await trio.sleep(1)
            log.push("body: slept 1s under the group's shield")
            nursery.cancel_scope.shield = False
            with trio.CancelScope(shield=True):
                await trio.sleep(1)
            log.push("body: waited 1s more in a shield")
        ok = True
    log.push(f"outer returned Ok? {b(ok)}")
    log.flags("group", nursery.cancel_scope)
    log.flags("outer", outer)


@case("S23", "trio")
async def s23(env):
    log = env.log()
    completed = False
    with trio.CancelScope() as s1:
        with trio.CancelScope() as s2:
            with trio.CancelScope() as s3:
                s3.cancel()
                s2.cancel()
                failed = False
                try:
                    await trio.sleep(1000)
                except trio.Cancelled:
                    failed = True
                    raise
                finally:
                    log.push(f"sleep failed={b(failed)}")
        completed = True
    inner = "None" if s2.cancelled_caught else "Some(..)"
    log.push(f"scope1 returned Ok(Some({inner}))" if completed else "scope1 returned Ok(None)")
    log.flags("scope3", s3)
    log.flags("scope2", s2)
    log.flags("scope1", s1)

    with trio.CancelScope() as a:
        left = "Err(Cancelled)"
        try:
            with trio.CancelScope() as bs:
                a.cancel()
                log.push(f"a cancelled: checkpoint failed={await cp_failed()}")
                log.push(f"again: checkpoint failed={await cp_failed()}")
                bs.shield = True
                log.push(f"b shielded: checkpoint failed={await cp_failed()}")
                bs.cancel()
                try:
                    await trio.lowlevel.checkpoint()
                except trio.Cancelled:
                    log.push("b cancelled: checkpoint failed=true")
                    raise
                log.push("b cancelled: checkpoint failed=false")
            left = "Ok(None)" if bs.cancelled_caught else "Ok(Some(()))"
        finally:
            log.push(f"b returned {left}")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("after b: checkpoint failed=true")
            raise
        log.push("after b: checkpoint failed=false")
    log.push("a returned Ok(None)" if a.cancelled_caught else "a returned Ok(Some(()))")
    log.flags("b", bs)
    log.flags("a", a)


@case("S24", "trio")
async def s24(env):
    log = env.log()
    out = None
    try:
        with trio.CancelScope() as scope:
            scope.cancel()
            raise MyError("test")
    except MyError as e:
        out = f"Err({e})"
    log.push(f"scope returned {out or 'Ok(..)'}")
    log.flags("scope", scope)

    err = False
    try:
        with trio.CancelScope() as scope2:
            scope2.cancel()

            async def body(nursery):
                async def fail(what):
                    raise MyError(what)

                nursery.start_soon(fail, "first")
                nursery.start_soon(fail, "second")

            completed, exc = await run_group(body)
            # Two children failing at the same instant: Trio runs them in either order.
            failed = sorted(str(e) for e in failures(exc)) if isinstance(
                exc, BaseExceptionGroup) else []
            log.push(f"group returned Err? {b(exc is not None)} "
                     f"failures (sorted)=[{', '.join(failed)}]")
            if exc is not None:
                raise exc
    except BaseException:
        err = True
    log.push(f"scope2 returned Err? {b(err)}")
    log.flags("scope2", scope2)



async def _sleep_until_cancelled(log, name, scope):
    """The child of S25: enters ``scope`` with a ``fail_after(1)`` inside and sleeps."""
    res = "Ok(Some(()))"
    try:
        with scope, trio.fail_after(1):
            await trio.sleep_forever()
    except trio.TooSlowError:
        res = "TimedOut"
    except trio.Cancelled:
        res = "Err(Cancelled)"
        raise
    else:
        if scope.cancelled_caught:
            res = "Ok(None)"
    finally:
        log.push(f"{name}: scope returned {res}")
    log.flags(name, scope)


@case("S25", "trio")
async def s25(env):
    log = env.log()
    scope = trio.CancelScope()
    scope.cancel()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sleep_until_cancelled, log, "cancelled before entry", scope)

    scope = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_sleep_until_cancelled, log, "cancelled after entry", scope)
        await trio.sleep(0.5)
        scope.cancel()

    scope = trio.CancelScope()
    scope.shield = True
    completed = False
    with trio.CancelScope() as outer:
        with scope:
            outer.cancel()
            log.push(f"shielded: checkpoint failed={await cp_failed()}")
            scope.shield = False
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled:
                log.push("unshielded: checkpoint failed=true")
                raise
            log.push("unshielded: checkpoint failed=false")
        completed = True
    log.push("outer returned Ok(None)" if not completed and outer.cancelled_caught
             else "outer returned Ok(Some(..))")
    log.flags("shield before entry", scope)
    log.flags("outer", outer)


# ---- D -------------------------------------------------------------------------------


@case("D14", "trio")
async def d14(env):
    log = env.log()
    start = trio.current_time()
    with trio.CancelScope() as scope:
        d = scope.deadline
        log.push(f"deadline at entry: {'None' if d == math.inf else d}")
        scope.deadline = start + 1
        log.push(f"deadline set: Some({secs(scope.deadline - start)})")
    await trio.sleep(2)
    for _ in range(3):
        await trio.lowlevel.checkpoint()
    log.flags("exited before its deadline, 2s later", scope)

    start = trio.current_time()
    completed = False
    with trio.CancelScope() as scope:
        log.push(f"checkpoint failed={await cp_failed()}")
        scope.deadline = start + 10
        log.push(f"deadline +10s: checkpoint failed={await cp_failed()}")
        await trio.sleep(5)
        log.push(f"slept 5s: checkpoint failed={await cp_failed()}")
        scope.deadline = start + 1
        log.push(f"deadline moved to +1s: checkpoint failed={await cp_failed()}")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("again: checkpoint failed=true")
            raise
        log.push("again: checkpoint failed=false")
        completed = True
    log.push("scope returned Ok(Some(()))" if completed else
             ("scope returned Ok(None)" if scope.cancelled_caught else "scope returned ?"))
    log.flags("moved into the past", scope)


@case("D15", "trio")
async def d15(env):
    log = env.log()
    t0 = trio.current_time()
    scope = trio.CancelScope(deadline=t0 + 1)
    log.flags("deadline in 1s", scope)
    scope.deadline = t0
    log.flags("deadline moved to now", scope)
    scope.deadline = t0 + 1
    log.flags("deadline moved back", scope)
    completed = False
    with scope:
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("entered: checkpoint failed=true")
            raise
        log.push("entered: checkpoint failed=false")
        completed = True
    log.push("scope returned Ok(Some(()))" if completed else
             ("scope returned Ok(None)" if scope.cancelled_caught else "scope returned ?"))
    log.flags("after entry", scope)


@case("D16", "trio")
async def d16(env):
    log = env.log()
    t0 = trio.current_time()

    def ced(what):
        log.push(f"{what}: {budget(trio.current_effective_deadline(), env.now())}")

    log.push(f"task: {budget(trio.current_effective_deadline(), env.now())}")
    with trio.CancelScope(deadline=t0 + 5) as s1:
        with trio.CancelScope(deadline=t0 + 10) as s2:
            ced("scope1(5)/scope2(10)")
            s2.deadline = t0 + 3
            ced("scope2 moved to 3")
            s2.deadline = t0 + 10
            ced("scope2 moved to 10")
            s2.shield = True
            ced("scope2 shielded")
            s2.shield = False
            ced("scope2 unshielded")
            s1.cancel()
            ced("scope1 cancelled")
            s2.shield = True
            ced("scope2 shielded again")
        ced("after scope2")
    ced("after scope1")
    log.flags("scope1", s1)
    log.flags("scope2", s2)


@case("D17", "trio")
async def d17(env):
    log = env.log()
    for kind, cm in (("move_on_after", trio.move_on_after), ("fail_after", trio.fail_after)):
        returned = "?"
        completed = False
        with trio.CancelScope() as outer:
            try:
                with cm(1, shield=True) as inner:
                    outer.cancel()
                    log.push(f"{kind}: shielded checkpoint failed={await cp_failed()}")
                    inner.shield = False
                    try:
                        await trio.lowlevel.checkpoint()
                    except trio.Cancelled:
                        log.push(f"{kind}: unshielded checkpoint failed=true")
                        raise
                    log.push(f"{kind}: unshielded checkpoint failed=false")
                returned = f"Ok(completed={b(not inner.cancelled_caught)})"
            except trio.TooSlowError:
                returned = "TimedOut"
                raise
            except trio.Cancelled:
                returned = "Err(Cancelled)"
                raise
            finally:
                log.push(f"{kind}: inner returned {returned}")
            completed = True
        log.push(f"{kind}: outer returned Ok(None)? "
                 f"{b(not completed and outer.cancelled_caught)}")
        log.flags(f"{kind}: inner", inner)
        log.flags(f"{kind}: outer", outer)


@case("D18", "trio")
async def d18(env):
    log = env.log()
    rcs = trio.move_on_after(5)
    await trio.sleep(3)
    start = trio.current_time()
    completed = False
    with rcs as cs:
        log.push(f"entered: deadline Some({secs(cs.deadline - start)})")
        cs.deadline = start + 3
        log.push(f"moved: deadline Some({secs(cs.deadline - start)})")
        failed = False
        try:
            await trio.sleep(100)
        except trio.Cancelled:
            failed = True
            raise
        finally:
            log.push(f"sleep failed={b(failed)}")
        completed = True
    log.push("scope returned Ok(None)" if not completed and rcs.cancelled_caught
             else "scope returned Ok(Some(()))")
    log.flags("moved", rcs)

    rcs = trio.move_on_after(5)
    log.push(f"shield before: {b(rcs.shield)}")
    rcs.shield = True
    log.push(f"shield set: {b(rcs.shield)}")
    await trio.sleep(3)
    start = trio.current_time()
    completed = False
    with trio.CancelScope() as outer:
        outer.cancel()
        with rcs:
            log.push(f"entered: deadline Some({secs(rcs.deadline - start)})")
            log.push(f"shielded: checkpoint failed={await cp_failed()}")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("after it: checkpoint failed=true")
            raise
        log.push("after it: checkpoint failed=false")
        completed = True
    log.push("outer returned Ok(None)" if not completed and outer.cancelled_caught
             else "outer returned Ok(Some(()))")
    log.flags("shielded", rcs)
    log.flags("outer", outer)


@case("D19", "trio")
async def d19(env):
    log = env.log()
    t0 = trio.current_time()
    scope = trio.CancelScope(deadline=t0 + 1)
    scope.deadline = t0
    scope.deadline = t0 + 1
    log.flags("moved to now and back", scope)
    completed = False
    with scope:
        log.push(f"entered: checkpoint failed={await cp_failed()}")
        failed = False
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            failed = True
            raise
        finally:
            log.push(f"sleep failed={b(failed)}")
        completed = True
    log.push("scope returned Ok(None)" if not completed and scope.cancelled_caught
             else "scope returned Ok(Some(()))")
    log.flags("after", scope)


# ---- G -------------------------------------------------------------------------------


@case("G20", "trio", order="tick")
async def g20(env):
    log = env.log()

    async def leaf(name):
        try:
            await trio.sleep(1000)
        except trio.Cancelled:
            log.push(f"{name} cancelled")

    async def worker(w):
        async def body(n):
            n.start_soon(leaf, f"{w}-l1")
            n.start_soon(leaf, f"{w}-l2")

        completed, exc = await run_group(body)
        log.push(f"{w}: group returned {group_result(completed, exc)}")
        if exc is not None:
            raise exc

    async def top(nursery):
        nursery.start_soon(worker, "w1")
        nursery.start_soon(worker, "w2")
        nursery.cancel_scope.cancel()
        top.scope = nursery.cancel_scope

    completed, exc = await run_group(top)
    log.push(f"group returned {group_result(completed, exc)}")
    log.flags("group", top.scope)


@case("G21", "trio")
async def g21(env):
    log = env.log()
    for variant in ("empty block", "child without checkpoint", "block fails"):
        err = False
        try:
            with trio.CancelScope() as cs:
                cs.cancel()

                async def body(nursery):
                    if variant == "child without checkpoint":
                        async def noop():
                            pass

                        nursery.start_soon(noop)
                    elif variant == "block fails":
                        raise MyError("key")

                completed, exc = await run_group(body)
                log.push(f"{variant}: group returned {group_result(completed, exc)}")
                if exc is not None:
                    raise exc
        except BaseException:
            err = True
        log.push(f"{variant}: scope returned Err? {b(err)}")
        log.flags(variant, cs)


def start_result(value=None, exc=None, *, rust_value=None) -> str:
    if exc is None:
        return f"Ok({rust_value if rust_value is not None else value})"
    if isinstance(exc, trio.Cancelled):
        return "Cancelled"
    return f"Err({exc})"


@case("G22", "trio")
async def g22(env):
    log = env.log()

    async def started_with_no_checkpoint(*, task_status):
        task_status.started("hi")

    async def body(nursery):
        body.nursery = nursery
        completed = False
        with trio.CancelScope() as cs:
            body.cs = cs
            cs.cancel()
            try:
                v = await nursery.start(started_with_no_checkpoint)
                log.push(f"start returned {start_result(rust_value=repr(v).replace(chr(39), chr(34)))}")
            except BaseException as e:
                log.push(f"start returned {start_result(exc=e)}")
                raise
            completed = True
        log.push(f"caller scope returned Ok(Some)? {b(completed)}")

    completed, exc = await run_group(body)
    log.push(f"group returned {group_result(completed, exc)}")
    log.flags("caller", body.cs)
    log.flags("group", body.nursery.cancel_scope)


@case("G23", "trio")
async def g23(env):
    log = env.log()

    async def raise_after_started(*, task_status):
        task_status.started()
        raise MyError("whoopsiedaisy")

    async def body(nursery):
        body.nursery = nursery
        with trio.CancelScope() as cs:
            body.cs = cs
            cs.cancel()
            try:
                v = await nursery.start(raise_after_started)
                log.push(f"start returned Ok({v})")
            except MyError as e:
                log.push(f"start returned {start_result(exc=e)}")
            except trio.Cancelled as e:
                log.push(f"start returned {start_result(exc=e)}")
                raise

    completed, exc = await run_group(body)
    log.push(f"group returned {group_result(completed, exc)}")
    log.flags("caller", body.cs)
    log.flags("group", body.nursery.cancel_scope)


@case("G24", "trio", order="tick")
async def g24(env):
    log = env.log()
    for before in (True, False):
        when = "before" if before else "after"

        async def setup_nursery(*, task_status):
            async with trio.open_nursery() as n:
                task_status.started(n)
                await trio.sleep(1000)

        async def sleeping_children(target, *, task_status):
            async with trio.open_nursery() as n:
                n.start_soon(sleeper, log, f"{when}: sleeper 1")
                n.start_soon(sleeper, log, f"{when}: sleeper 2")
                await trio.sleep(1)
                if before:
                    target.cancel_scope.cancel()
                task_status.started()

        async def body(nursery):
            target = await nursery.start(setup_nursery)
            await target.start(sleeping_children, target)
            log.push(f"{when}: start returned")
            if not before:
                target.cancel_scope.cancel()
            log.flags(f"{when}: target", target.cancel_scope)

        completed, exc = await run_group(body)
        log.push(f"{when}: group returned {group_result(completed, exc)}")


@case("G25", "trio")
async def g25(env):
    log = env.log()

    async def outer_body(n1):
        async def sleep_a_bit(name, *, task_status):
            await trio.sleep(2)
            task_status.started()
            await trio.sleep(3)
            log.push(f"{name} done")

        async def caller(n2, name):
            await n2.start(sleep_a_bit, name)
            log.push(f"{name}: start returned")

        async def n2_body(n2):
            outer_body.n2 = n2
            n1.start_soon(caller, n2, "first")
            await trio.sleep(1)
            n1.start_soon(caller, n2, "second")
            log.push("n2 block done")

        completed, exc = await run_group(n2_body)
        log.push(f"n2 returned {group_result(completed, exc)}")
        log.flags("n2", outer_body.n2.cancel_scope)
        if exc is not None:
            raise exc

    completed, exc = await run_group(outer_body)
    log.push(f"n1 returned {group_result(completed, exc)}")


@case("G26", "trio", order="tick")
async def g26(env):
    log = env.log()

    async def outer_body(n1):
        async def sleep_then_crash(*, task_status):
            await trio.sleep(7)
            raise MyError("crash")

        async def caller(n2):
            try:
                v = await n2.start(sleep_then_crash)
                log.push(f"start returned Ok({v})")
            except MyError as e:
                log.push(f"start returned {start_result(exc=e)}")

        async def n2_body(n2):
            outer_body.n2 = n2
            n1.start_soon(caller, n2)
            await trio.sleep(1)
            log.push("n2 block done")

        completed, exc = await run_group(n2_body)
        log.push(f"n2 returned {group_result(completed, exc)}")
        log.flags("n2", outer_body.n2.cancel_scope)
        if exc is not None:
            raise exc

    completed, exc = await run_group(outer_body)
    log.push(f"n1 returned {group_result(completed, exc)}")


@case("G27", "trio", order="tick")
async def g27(env):
    log = env.log()
    out = "Ok(..)"
    try:
        with trio.CancelScope() as outer:
            async def body(nursery):
                body.nursery = nursery

                async def crasher():
                    raise MyError("crasher")

                nursery.start_soon(sleeper, log, "t1")
                nursery.start_soon(sleeper, log, "t2")
                nursery.cancel_scope.cancel()
                with trio.CancelScope(shield=True):
                    await trio.sleep(1)
                nursery.start_soon(sleeper, log, "t3")
                outer.cancel()
                nursery.start_soon(crasher)

            completed, exc = await run_group(body)
            log.push(f"group returned {group_result(completed, exc)}")
            if exc is not None:
                raise exc
    except BaseExceptionGroup as eg:
        out = "Err(failures=[" + ", ".join(str(e) for e in failures(eg)) + "])"
        if any(isinstance(e, trio.Cancelled) for e in eg.exceptions):
            out += " (with a Cancelled)"
    log.push(f"outer returned {out}")
    log.flags("outer", outer)
    log.flags("group", body.nursery.cancel_scope)


@case("G28", "trio")
async def g28(env):
    log = env.log()

    async def body(nursery):
        body.nursery = nursery

        async def crasher():
            raise MyError("child")

        nursery.start_soon(crasher)
        raise MyError("block")

    completed, exc = await run_group(body)
    log.push(f"group returned {group_result(completed, exc)}")
    log.flags("group", body.nursery.cancel_scope)


@case("G29", "trio")
async def g29(env):
    log = env.log()
    for seconds in (1, 2):
        async def sleep_then_start(s, *, task_status):
            await trio.sleep(s)
            task_status.started(s)
            await trio.sleep(s)

        async def body(nursery):
            v = await nursery.start(sleep_then_start, seconds)
            log.push(f"start returned {v}")

        completed, exc = await run_group(body)
        log.push(f"group returned {group_result(completed, exc)}")
