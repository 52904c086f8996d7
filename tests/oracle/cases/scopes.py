"""Twins of the S cases (cancel scopes), on Trio. Each mirrors the test of the same id
in ``tests/conformance/scopes.rs``, event for event."""

import trio

from harness import case, reason


@case("S01", "trio")
async def s01(env):
    log = env.log()
    with trio.CancelScope() as scope:
        log.push("before cancel")
        scope.cancel()
        log.push("after cancel")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("checkpoint failed")
            raise
        log.push("after checkpoint")
    log.push("after scope")
    log.flags("scope", scope)


@case("S02", "trio")
async def s02(env):
    log = env.log()
    with trio.CancelScope() as scope:
        scope.cancel()
        log.push("after cancel")
    log.push("after scope")
    log.flags("scope", scope)


@case("S03", "trio")
async def s03(env):
    log = env.log()
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("1st checkpoint failed, ignored")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("2nd checkpoint failed, ignored")
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except trio.Cancelled:
            log.push("check_cancelled failed, ignored")
        try:
            await trio.sleep(3600)
        except trio.Cancelled:
            log.push("sleep failed at once")
            raise
    log.flags("scope", scope)


@case("S04", "trio")
async def s04(env):
    log = env.log()
    with trio.CancelScope() as outer:
        try:
            with trio.CancelScope() as inner:
                outer.cancel()
                log.push("inner: after outer.cancel()")
                await trio.lowlevel.checkpoint()
                log.push("inner: not reached")
            log.push("inner returned Ok(..)")
        except trio.Cancelled as c:
            log.push(f"inner returned Err(Cancelled: {reason(c)})")
            raise
        log.push("outer: not reached")
    log.push("after outer")
    log.flags("inner", inner)
    log.flags("outer", outer)


@case("S05", "trio")
async def s05(env):
    log = env.log()
    with trio.CancelScope() as outer:
        with trio.CancelScope() as inner:
            inner.cancel()
            await trio.lowlevel.checkpoint()
            log.push("inner: not reached")
        log.push("inner returned Ok(None)" if inner.cancelled_caught else "inner returned Ok(..)")
        await trio.lowlevel.checkpoint()
        log.push("outer: checkpoint after inner succeeded")
        await trio.sleep(1)
        log.push("outer: slept 1s")
    log.flags("inner", inner)
    log.flags("outer", outer)


@case("S06", "trio", differs="the `Cancelled` a checkpoint returns carries the reason of the "
      "outermost cancelled scope it can see (the one it is travelling to); Trio's carries the "
      "innermost's")
async def s06(env):
    log = env.log()
    with trio.CancelScope() as outer:
        ok = True
        try:
            with trio.CancelScope() as inner:
                inner.cancel("inner")
                outer.cancel("outer")
                try:
                    await trio.lowlevel.checkpoint()
                except trio.Cancelled as c:
                    log.push(f"inner checkpoint: {reason(c)}")
                    raise
        except trio.Cancelled:
            ok = False
            raise
        finally:
            log.push(f"inner returned Ok? {'true' if ok else 'false'}")
    log.flags("inner", inner)
    log.flags("outer", outer)


@case("S07", "trio")
async def s07(env):
    log = env.log()
    with trio.CancelScope() as outer:
        outer.cancel()
        with trio.CancelScope(shield=True) as shielded:
            await trio.lowlevel.checkpoint()
            log.push("shielded: checkpoint ok")
            await trio.sleep(2)
            log.push("shielded: slept 2s")
        log.push('shielded returned Ok(Some("cleanup done"))')
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled:
            log.push("outer: checkpoint after shield failed")
            raise
    log.flags("shielded", shielded)
    log.flags("outer", outer)


@case("S08", "trio")
async def s08(env):
    log = env.log()
    shielded = trio.CancelScope(shield=True)

    async def helper():
        await trio.sleep(1)
        log.push("helper: shield off")
        shielded.shield = False

    async with trio.open_nursery() as nursery:
        nursery.start_soon(helper)
        with trio.CancelScope() as outer:
            outer.cancel()
            ok = True
            try:
                with shielded:
                    try:
                        await trio.sleep(10)
                        log.push("shielded: slept 10s")
                    except trio.Cancelled as c:
                        log.push(f"shielded: sleep failed ({reason(c)})")
                        raise
            except trio.Cancelled:
                ok = False
                raise
            finally:
                log.push(f"shielded scope returned Ok? {'true' if ok else 'false'}")
    log.flags("shielded", shielded)
    log.flags("outer", outer)


@case("S09", "trio")
async def s09(env):
    log = env.log()
    with trio.CancelScope() as outer:
        outer.cancel("outer")
        with trio.CancelScope(shield=True) as shielded:
            await trio.lowlevel.checkpoint()
            log.push("shielded: outer cancel hidden")
            shielded.cancel("own")
            try:
                await trio.lowlevel.checkpoint()
            except trio.Cancelled as c:
                log.push(f"shielded: checkpoint failed ({reason(c)})")
                raise
        log.push("shielded returned Ok(None)" if shielded.cancelled_caught else "shielded returned ?")
        try:
            await trio.lowlevel.checkpoint()
        except trio.Cancelled as c:
            log.push(f"outer: checkpoint failed ({reason(c)})")
            raise
    log.flags("shielded", shielded)
    log.flags("outer", outer)
