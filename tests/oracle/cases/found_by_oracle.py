"""Twins of X19–X22 (``tests/conformance/found_by_oracle.rs``): the differences the
oracle found first, fixed to match Trio and AnyIO."""


import anyio
import trio

from harness import case, budget


@case("X19", "trio")
async def x19(env):
    log = env.log()
    with trio.move_on_after(60) as outer:
        log.push(f"before cancel: {budget(trio.current_effective_deadline(), env.now())}")
        outer.cancel()
        log.push(f"after cancel: {budget(trio.current_effective_deadline(), env.now())}")
        with trio.CancelScope(shield=True):
            log.push(f"shielded: {budget(trio.current_effective_deadline(), env.now())}")
        await trio.lowlevel.checkpoint()
    with trio.move_on_after(2):
        failed = False
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            failed = True
            raise
        finally:
            log.push(
                f"deadline fired (sleep failed={'true' if failed else 'false'}): "
                f"{budget(trio.current_effective_deadline(), env.now())}"
            )
    log.flags("outer", outer)


@case("X20", "trio")
async def x20(env):
    log = env.log()
    outcome = None
    try:
        with trio.CancelScope() as outer:
            try:
                async with trio.open_nursery() as nursery:

                    async def cleanup_then_cancelled():
                        try:
                            await trio.sleep(10)
                        finally:
                            with trio.CancelScope(shield=True):
                                await trio.sleep(1)

                    async def failing_cleanup():
                        try:
                            await trio.sleep(10)
                        except trio.Cancelled:
                            raise ValueError("my error: cleanup failed")

                    nursery.start_soon(cleanup_then_cancelled)
                    nursery.start_soon(failing_cleanup)
                    await trio.sleep(1)
                    outer.cancel()
            except BaseExceptionGroup as eg:
                errors = [e for e in eg.exceptions if not isinstance(e, trio.Cancelled)]
                cancels = [e for e in eg.exceptions if isinstance(e, trio.Cancelled)]
                log.push(
                    f"group: failures={len(errors)} "
                    f"cancellation={'true' if cancels and not errors else 'false'}"
                )
                raise
    except BaseExceptionGroup as eg:
        # What left the outer scope: the error only (the scope split the Cancelled off).
        outcome = eg.exceptions[0] if len(eg.exceptions) == 1 else eg
    except ValueError as e:
        outcome = e
    log.push(f"outer returned: {outcome}")
    log.flags("outer", outer)


async def _x21(env, lib):
    log = env.log()
    async with lib.create_task_group() as group:

        async def child(*, task_status):
            task_status.started(7)
            log.push("child: started")
            failed = False
            try:
                await lib.sleep(5)
            except lib.get_cancelled_exc_class():
                failed = True
                raise
            finally:
                log.push(f"child: sleep cancelled={'true' if failed else 'false'}")

        with lib.CancelScope() as caller:
            caller.cancel()
            try:
                v = await group.start(child)
                log.push(f"start returned Ok({v})")
            except lib.get_cancelled_exc_class():
                log.push("start returned Cancelled")
                raise
        log.push(f"caller scope absorbed={'true' if caller.cancelled_caught else 'false'}")
        log.flags("caller", caller)
    log.flags("group", group.cancel_scope)


class _TrioAsLib:
    """The few names `_x21` uses, on Trio itself."""

    sleep = staticmethod(trio.sleep)
    CancelScope = trio.CancelScope

    @staticmethod
    def get_cancelled_exc_class():
        return trio.Cancelled

    @staticmethod
    def create_task_group():
        return _Nursery()


class _Nursery:
    async def __aenter__(self):
        self._cm = trio.open_nursery()
        self._n = await self._cm.__aenter__()
        self.cancel_scope = self._n.cancel_scope
        return self

    async def __aexit__(self, *exc):
        return await self._cm.__aexit__(*exc)

    async def start(self, fn):
        return await self._n.start(fn)


@case("X21", "trio")
async def x21_trio(env):
    await _x21(env, _TrioAsLib)


@case("X21", "anyio")
async def x21_anyio(env):
    await _x21(env, anyio)


@case("X22", "trio")
async def x22(env):
    log = env.log()
    late = trio.CancelScope(deadline=trio.current_time() + 1)
    log.flags("before the deadline", late)
    await trio.sleep(2)
    log.flags("after the deadline", late)
    relative = trio.CancelScope(relative_deadline=0)
    log.flags("relative, not entered", relative)
