"""Twins of the group cases whose behaviour changed in issue 10 (G04, G08, G09) and of
the ``start`` and nesting cases (G13–G15, G17). ``groups.py`` has the others."""

import asyncio

import trio

from harness import case, reason


def cancel_or_errors(exc):
    """(is only cancellations, number of other errors) of an exception (group)."""
    leaves = list(_leaves(exc))
    errors = [e for e in leaves if not isinstance(e, (trio.Cancelled, asyncio.CancelledError))]
    return (not errors, len(errors))


def _leaves(exc):
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            yield from _leaves(e)
    else:
        yield exc


def nesting(exc):
    """``group[...]`` per exception group (cancellations left out), else the message."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [
            nesting(e)
            for e in exc.exceptions
            if not isinstance(e, (trio.Cancelled, asyncio.CancelledError))
        ]
        return "group[" + ", ".join(inner) + "]"
    return str(exc)


def flags(log, name, nursery):
    log.flags(name, nursery.cancel_scope)


@case("G04", "trio")
async def g04(env):
    log = env.log()
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as middle:
            try:
                async with trio.open_nursery() as inner:
                    middle.cancel_scope.cancel()
                    log.push(
                        "We DO reach here: tg.cancel() schedules CancelledError but does "
                        "not raise it directly"
                    )
                    await trio.sleep(0)
                    log.push("We do NOT reach here: sleep(0) raises CancelledError")
            except BaseExceptionGroup as eg:
                only_cancel, failures = cancel_or_errors(eg)
                log.push(
                    f"inner group: Err, cancellation={'true' if only_cancel else 'false'} "
                    f"failures={failures}"
                )
                raise
            log.push("We do NOT reach here: inner_tg.__aexit__() propagates cancellation")
        log.push("We DO reach here: middle_tg was cancelled but is now complete")
    log.push("We DO reach here: outer_tg is unaffected")
    flags(log, "inner", inner)
    flags(log, "middle", middle)
    flags(log, "outer", outer)


async def sleeper(log, name, d):
    try:
        await trio.sleep(d)
        log.push(f"{name} done")
    except trio.Cancelled:
        log.push(f"{name} cancelled")
        raise


@case("G08", "trio", order="tick")
async def g08(env):
    log = env.log()
    async with trio.open_nursery() as top:
        with trio.CancelScope() as outer:

            async def canceller():
                await trio.sleep(1)
                outer.cancel("outer")

            top.start_soon(canceller)
            try:
                async with trio.open_nursery() as group:
                    group.start_soon(sleeper, log, "child 1", 100)
                    group.start_soon(sleeper, log, "child 2", 100)
                    log.push("body done")
            except BaseExceptionGroup as eg:
                only_cancel, failures = cancel_or_errors(eg)
                c = next(_leaves(eg))
                what = f'Some("{reason(c)}")' if only_cancel else "None"
                log.push(f"group: Err, cancellation={what} failures={failures}")
                raise
            log.push("outer body: not reached")
    log.flags("outer", outer)
    flags(log, "group", group)


@case("G09", "trio", order="tick")
async def g09(env):
    log = env.log()
    try:
        async with trio.open_nursery() as group:

            async def cleanup_fails():
                try:
                    await trio.sleep(100)
                except trio.Cancelled:
                    log.push("child: cancelled, cleanup fails")
                    raise ValueError("my error: cleanup")

            group.start_soon(cleanup_fails)
            await trio.sleep(1)
            group.cancel_scope.cancel()
            log.push("body: group cancelled")
            await sleeper(log, "body", 100)
    except BaseExceptionGroup as eg:
        only_cancel, failures = cancel_or_errors(eg)
        assert not only_cancel and failures == 1, eg
    flags(log, "group", group)


@case("G13", "trio")
async def g13(env):
    log = env.log()
    async with trio.open_nursery() as nursery:
        with trio.CancelScope() as cs:

            async def child(task_status):
                log.push("child: setting up")
                await trio.sleep(1)
                task_status.started(42)
                log.push("child: started")
                await trio.sleep(2)
                log.push("child: still running after start")

            v = await nursery.start(child)
            log.push(f"caller: start returned {v}")
            cs.cancel()
            with trio.CancelScope(shield=True):
                await trio.sleep(3)
            await trio.lowlevel.checkpoint()
            returned = f"Some({v})"
        if cs.cancelled_caught:
            returned = "None"
        log.push(f"body: caller scope returned {returned}")
    log.push("after group")


@case("G14", "trio")
async def g14(env):
    log = env.log()
    async with trio.open_nursery() as group:

        async def child(task_status):
            log.push("child: setting up")
            try:
                await trio.sleep(5)
            except trio.Cancelled as c:
                log.push(f"child: cancelled before started ({reason(c)})")
                raise
            task_status.started(1)

        outcome = "Ok(None)"
        with trio.move_on_after(1) as scope:
            v = await group.start(child)
            outcome = f"Ok(Some({v}))"
        log.push(
            f"caller: {outcome if not scope.cancelled_caught else 'Ok(None)'}, "
            f"scope caught={'true' if scope.cancelled_caught else 'false'}"
        )
        await trio.lowlevel.checkpoint()
        log.push("body goes on")
    flags(log, "group", group)


@case("G15", "trio")
async def g15(env):
    log = env.log()
    async with trio.open_nursery() as group:

        async def fails(task_status):
            await trio.sleep(1)
            log.push("child: fails before started")
            raise ValueError("my error: setup failed")

        try:
            await group.start(fails)
        except ValueError as e:
            log.push(f"caller got: {e}")

        async def returns(task_status):
            return None

        try:
            await group.start(returns)
        except RuntimeError as e:
            if "without calling" in str(e) and "started" in str(e):
                log.push(
                    "caller got: the task passed to TaskGroup::start returned without "
                    "calling TaskStatus::started"
                )
            else:
                log.push(f"caller got: {e}")
        await trio.lowlevel.checkpoint()
        log.push("body goes on")
    flags(log, "group", group)


@case("G17", "trio", order="tick")
async def g17_trio(env):
    log = env.log()

    async def leaf():
        await trio.sleep(1)
        raise ValueError("my error: leaf")

    async def inner_host():
        async with trio.open_nursery() as itg:
            itg.start_soon(leaf)
            itg.start_soon(sleeper, log, "inner sibling", 100)
            await sleeper(log, "inner body", 100)

    try:
        async with trio.open_nursery() as tg:
            tg.start_soon(inner_host)
            tg.start_soon(sleeper, log, "outer sibling", 100)
            await sleeper(log, "outer body", 100)
    except BaseExceptionGroup as eg:
        log.push(f"child nesting: {nesting(eg)}")

    try:
        async with trio.open_nursery():
            async with trio.open_nursery() as itg:
                itg.start_soon(leaf)
    except BaseExceptionGroup as eg:
        log.push(f"body nesting: {nesting(eg)}")


async def asleeper(log, name, d):
    try:
        await asyncio.sleep(d)
        log.push(f"{name} done")
    except asyncio.CancelledError:
        log.push(f"{name} cancelled")
        raise


@case("G17", "asyncio", order="tick")
async def g17_asyncio(env):
    log = env.log()

    async def leaf():
        await asyncio.sleep(1)
        raise ValueError("my error: leaf")

    async def inner_host():
        async with asyncio.TaskGroup() as itg:
            itg.create_task(leaf())
            itg.create_task(asleeper(log, "inner sibling", 100))
            await asleeper(log, "inner body", 100)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(inner_host())
            tg.create_task(asleeper(log, "outer sibling", 100))
            await asleeper(log, "outer body", 100)
    except BaseExceptionGroup as eg:
        log.push(f"child nesting: {nesting(eg)}")

    try:
        async with asyncio.TaskGroup():
            async with asyncio.TaskGroup() as itg:
                itg.create_task(leaf())
    except BaseExceptionGroup as eg:
        log.push(f"body nesting: {nesting(eg)}")
