"""Twins of the R cases (races and data): Trio memory channels, ``trio.Lock`` and
``asyncio.Lock``, a Trio socket pair. Each mirrors the test named in ``rust=`` in
``tests/conformance/races.rs``. R01 is anchored on the seed's footnote and R06 on this
project: no twin.

Where the Rust test spawns top-level tasks, the Trio twin hosts them in a nursery.
Where it cancels a ``CancelScope`` around one wait of another task, the asyncio twin
cancels that task (``Task.cancel()``) and the task absorbs the ``CancelledError``
around the wait with ``uncancel()``, which is what an asyncio scope (``timeout``) does.
"""

import asyncio
import os

import trio

from harness import case, rust_str


def rust_vec(items) -> str:
    return "[" + ", ".join(rust_str(x) for x in items) + "]"


def try_recv(rx) -> str:
    """``rx.try_recv()`` in the words of its ``{:?}``, from Trio's ``receive_nowait``."""
    try:
        return f"Ok({rust_str(rx.receive_nowait())})"
    except trio.WouldBlock:
        return "Err(Empty)"
    except trio.EndOfChannel:
        return "Err(Closed)"


async def queue_in_order(nursery, *fns):
    """Starts ``fns`` so that each has run up to its first block before the next starts.

    The Rust runtime runs spawned tasks in FIFO order, so the first one spawned is
    queued first on the channel or lock; Trio runs a batch of new tasks in either order.
    Between two ``start_soon`` the host passes one checkpoint: the task just started runs
    in the batch that follows, the next one only in the batch after it."""
    for i, fn in enumerate(fns):
        nursery.start_soon(fn)
        if i + 1 < len(fns):
            await trio.lowlevel.checkpoint()


# ---- R02 -------------------------------------------------------------------------


@case("R02", "trio", rust="races::r02_cancelled_receiver_consumes_nothing")
async def r02_timeout(env):
    log = env.log()
    tx, rx = trio.open_memory_channel(1)
    rx1 = rx.clone()

    async def first():
        got = "Ok(Some(None))"  # the channel ended
        with trio.move_on_after(1) as scope:
            try:
                got = f"Ok(Some(Some({rust_str(await rx1.receive())})))"
            except trio.EndOfChannel:
                pass
        log.push(f"first (queued first, timeout 1s): {'Ok(None)' if scope.cancelled_caught else got}")

    async def second():
        try:
            got = f"Ok(Some({rust_str(await rx.receive())}))"
        except trio.EndOfChannel:
            got = "Ok(None)"
        log.push(f"second: {got}")

    async with trio.open_nursery() as n:
        await queue_in_order(n, first, second)
        await trio.sleep(2)
        await tx.send("msg")


@case("R02", "trio", rust="races::r02_receiver_cancelled_then_send_same_tick", order="tick")
async def r02_same_tick(env):
    log = env.log()
    tx, rx = trio.open_memory_channel(1)
    rx1 = rx.clone()
    scope = trio.CancelScope()
    first_done = trio.Event()

    async def first():
        got = "Ok(Some(None))"
        with scope:
            try:
                got = f"Ok(Some(Some({rust_str(await rx1.receive())})))"
            except trio.EndOfChannel:
                pass
        log.push(f"first: {'Ok(None)' if scope.cancelled_caught else got}")
        first_done.set()

    async def second():
        try:
            got = f"Ok(Some({rust_str(await rx.receive())}))"
        except trio.EndOfChannel:
            got = "Ok(None)"
        log.push(f"second: {got}")

    async with trio.open_nursery() as n:
        await queue_in_order(n, first, second)
        await trio.sleep(1)  # both receivers are queued, `first` in front
        scope.cancel()
        tx.send_nowait("msg")
        await first_done.wait()
        await tx.aclose()  # ends the channel, so a starved `second` sees the end


# ---- R03 -------------------------------------------------------------------------


@case("R03", "trio", rust="races::r03_cancelled_blocked_sender_sent_nothing")
async def r03_timeout(env):
    log = env.log()
    tx, rx = trio.open_memory_channel(1)
    tx.send_nowait("first")

    async def sender():
        value = "second"
        with trio.move_on_after(1) as scope:
            try:
                await tx.send(value)
                got = "sent"
            except trio.Cancelled:
                # Trio's send raises and the value stays with the caller.
                log.push(f"sender: cancelled, got back {rust_str(value)}")
                raise
            except trio.BrokenResourceError:
                got = "closed"
        result = "Ok(None)" if scope.cancelled_caught else f"Ok(Some({rust_str(got)}))"
        log.push(f"sender: scope returned {result}")

    async with trio.open_nursery() as n:
        n.start_soon(sender)
        await trio.sleep(2)
    a = try_recv(rx)
    b = try_recv(rx)
    log.push(f"main: try_recv -> {a}, then {b}")


@case("R03", "trio", rust="races::r03_sender_cancelled_then_room_made_same_tick")
async def r03_same_tick(env):
    log = env.log()
    tx, rx = trio.open_memory_channel(1)
    tx.send_nowait("first")
    scope = trio.CancelScope()

    async def sender():
        with scope:
            try:
                await tx.send("second")
                got = "sent"
            except trio.BrokenResourceError:
                got = "closed"
        log.push(f"sender: {'Ok(None)' if scope.cancelled_caught else f'Ok(Some({rust_str(got)}))'}")

    async with trio.open_nursery() as n:
        n.start_soon(sender)
        await trio.sleep(1)  # the sender is blocked on the full channel
        scope.cancel()
        log.push(f"main: cancelled, then try_recv -> {try_recv(rx)}")
    log.push(f"main: try_recv -> {try_recv(rx)}")


# ---- R04 -------------------------------------------------------------------------
# The writes go through ``os.write`` on the socket's descriptor: like the runtime's
# ``write`` on a writable socket, it completes without yielding, so the data and the
# cancel arrive before the blocked reader runs again (Trio's ``send`` would yield, and
# Trio could see the readiness and wake the reader first).


@case("R04", "trio")
async def r04(env):
    log = env.log()
    writer, reader = trio.socket.socketpair()

    # Cancelled (timeout) while blocked, before any data.
    with trio.move_on_after(1):
        try:
            await reader.recv(16)
            log.push("read 1: cancelled=false")
        except trio.Cancelled:
            log.push("read 1: cancelled=true")
            raise

    # Data and cancel arrive together, before the blocked reader runs again.
    scope = trio.CancelScope()

    async def blocked():
        with scope:
            try:
                await reader.recv(16)
                log.push("read 2: cancelled=false")
            except trio.Cancelled:
                log.push("read 2: cancelled=true")
                raise

    async with trio.open_nursery() as n:
        n.start_soon(blocked)
        await trio.sleep(1)  # the reader waits for readiness
        written = os.write(writer.fileno(), b"hello")
        assert written == 5, written
        scope.cancel()

    data = await reader.recv(16)
    log.push(f"read 3: {rust_str(data.decode())}")
    log.flags("read 2 scope", scope)
    writer.close()
    reader.close()


# ---- R05 -------------------------------------------------------------------------


@case("R05", "trio", rust="races::r05_lock_waiter_cancel_vs_grant")
async def r05_trio(env):
    log = env.log()
    lock = trio.Lock()
    data = []
    await lock.acquire()

    # Cancelled before the grant (timeout 1s while the lock is held until 2s).
    async def early():
        with trio.move_on_after(1) as scope:
            async with lock:
                data.append("early")
        log.push(f"early waiter: {'Ok(None)' if scope.cancelled_caught else 'Ok(Some(()))'}")

    async def next_():
        async with lock:
            log.push("next waiter: got the lock")
            data.append("next")

    async with trio.open_nursery() as n:
        await queue_in_order(n, early, next_)
        await trio.sleep(2)
        lock.release()
    async with lock:
        log.push(f"lock holds {rust_vec(data)}")

    # Granted, then cancelled before it ran again.
    await lock.acquire()
    scope = trio.CancelScope()

    async def granted():
        with scope:
            async with lock:
                log.push("granted waiter: got the lock despite the cancel")
                data.append("granted")
                try:
                    await trio.lowlevel.checkpoint()
                except trio.Cancelled:
                    log.push("granted waiter: next checkpoint failed")
                    raise

    async with trio.open_nursery() as n:
        n.start_soon(granted)
        await trio.sleep(1)
        lock.release()  # grants the lock to the waiter...
        scope.cancel()  # ...and then cancels it
    locked = lock.locked()
    async with lock:
        log.push(f"locked={'true' if locked else 'false'}, lock holds {rust_vec(data)}")


@case("R05", "asyncio", rust="races::r05_lock_waiter_cancel_vs_grant",
      differs="asyncio's `Lock` takes back a lock granted to a waiter that is cancelled "
      "before it runs again (its `acquire` raises `CancelledError`, the lock goes to the "
      "next waiter); here a grant made before the cancel is kept and the next checkpoint "
      "fails (R10, as in Trio)")
async def r05_asyncio(env):
    log = env.log()
    lock = asyncio.Lock()
    data = []
    await lock.acquire()

    async def early():
        try:
            async with asyncio.timeout(1):
                async with lock:
                    data.append("early")
            result = "Ok(Some(()))"
        except TimeoutError:
            result = "Ok(None)"
        log.push(f"early waiter: {result}")

    async def next_():
        async with lock:
            log.push("next waiter: got the lock")
            data.append("next")

    t1 = asyncio.create_task(early())
    t2 = asyncio.create_task(next_())
    await asyncio.sleep(2)
    lock.release()
    await t1
    await t2
    async with lock:
        log.push(f"lock holds {rust_vec(data)}")

    await lock.acquire()

    async def granted():
        try:
            async with lock:
                log.push("granted waiter: got the lock despite the cancel")
                data.append("granted")
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    log.push("granted waiter: next checkpoint failed")
                    raise
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # the scope around the wait absorbs it

    t = asyncio.create_task(granted())
    await asyncio.sleep(1)
    lock.release()  # grants the lock to the waiter...
    t.cancel()  # ...and then cancels it
    await t
    locked = lock.locked()
    async with lock:
        log.push(f"locked={'true' if locked else 'false'}, lock holds {rust_vec(data)}")


@case("R05", "trio", rust="races::r05_waiter_cancelled_then_release_same_tick", order="tick")
async def r05_same_tick_trio(env):
    log = env.log()
    lock = trio.Lock()
    data = []
    await lock.acquire()
    scope = trio.CancelScope()

    async def first():
        with scope:
            async with lock:
                data.append("cancelled waiter")
        log.push(f"first waiter: {'Ok(None)' if scope.cancelled_caught else 'Ok(Some(()))'}")

    async def second():
        async with lock:
            log.push("second waiter: got the lock")
            data.append("second")

    async with trio.open_nursery() as n:
        await queue_in_order(n, first, second)
        await trio.sleep(1)
        scope.cancel()
        lock.release()
    async with lock:
        log.push(f"lock holds {rust_vec(data)}")


@case("R05", "asyncio", rust="races::r05_waiter_cancelled_then_release_same_tick",
      order="tick")
async def r05_same_tick_asyncio(env):
    log = env.log()
    lock = asyncio.Lock()
    data = []
    await lock.acquire()

    async def first():
        try:
            async with lock:
                data.append("cancelled waiter")
            result = "Ok(Some(()))"
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # the scope around the wait absorbs it
            result = "Ok(None)"
        log.push(f"first waiter: {result}")

    async def second():
        async with lock:
            log.push("second waiter: got the lock")
            data.append("second")

    t1 = asyncio.create_task(first())
    t2 = asyncio.create_task(second())
    await asyncio.sleep(1)
    t1.cancel()
    lock.release()
    await t1
    await t2
    async with lock:
        log.push(f"lock holds {rust_vec(data)}")
