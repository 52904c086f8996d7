//! The wakers of [`JoinHandle`](crate::JoinHandle)s waiting for their task.
//!
//! A handle that finds its task unfinished leaves its waker here, keyed by the task
//! cell's address, until the task ends (the end wakes it) or the handle goes. The
//! cell itself has no room for it: most handles are dropped unawaited or awaited
//! after their task ended, so a slot in every cell (16 bytes, a tenth of an idle
//! task, benchmark B9) would be paid by every task for the few that are waited for
//! while they run. A waiting handle costs an entry here instead (about 30 bytes,
//! only while it waits), and the cell keeps one flag bit (`READER`) saying whether
//! it has an entry, so a task nobody waits for never looks the table up.
//!
//! One table per thread: a cell is only polled, finished, dropped and read on its
//! runtime's thread, and a runtime never leaves its thread (`Runtime` is `!Send`),
//! so every entry is made and removed on the thread that owns it, without a lock.
//! A cell's entry is removed before the cell can be freed (by the task's end, the
//! future's drop, or the handle's drop, whichever comes first), so an address is
//! never found for a later cell at the same place.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::ptr::NonNull;
use std::task::Waker;

use super::core::KeyHasher;
use super::task::Header;

type Table = HashMap<usize, Waker, BuildHasherDefault<KeyHasher>>;

thread_local! {
    static READERS: RefCell<Table> = RefCell::new(Table::default());
}

/// Past a burst (100,000 handles awaited at once) the table gives its room back
/// once it is mostly empty, as the ready queue does.
const SHRINK_ABOVE: usize = 4096;

fn key(cell: NonNull<Header>) -> usize {
    cell.as_ptr() as usize
}

/// Whether the entry of `cell` would wake as `waker` does (then `set` has nothing to
/// do). `false` if there is none.
pub(crate) fn wakes_as(cell: NonNull<Header>, waker: &Waker) -> bool {
    READERS
        .try_with(|t| {
            t.borrow()
                .get(&key(cell))
                .is_some_and(|w| w.will_wake(waker))
        })
        .unwrap_or(false)
}

/// Makes `waker` the entry of `cell`; returns the entry it replaced, for the caller
/// to drop (a waker's destructor may be anyone's code: never under the table's
/// borrow). `Err(waker)` back if the thread's table is gone (the thread is exiting:
/// nothing will run the task any more).
pub(crate) fn set(cell: NonNull<Header>, waker: Waker) -> Result<Option<Waker>, Waker> {
    let mut waker = Some(waker);
    READERS
        .try_with(|t| {
            t.borrow_mut()
                .insert(key(cell), waker.take().expect("set once"))
        })
        .map_err(|_| waker.take().expect("not taken: the closure did not run"))
}

/// Takes the entry of `cell` out, if it has one.
pub(crate) fn take(cell: NonNull<Header>) -> Option<Waker> {
    READERS
        .try_with(|t| {
            let mut t = t.borrow_mut();
            let w = t.remove(&key(cell));
            if t.capacity() > SHRINK_ABOVE && t.len() * 8 < t.capacity() {
                let room = t.len() * 2;
                t.shrink_to(room);
            }
            w
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    //! Entries come and go with the waits: a test fails if one is left behind (a
    //! leak, or a later cell at the same address found a stale waker) or missing (a
    //! reader never woken).

    use std::cell::Cell;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::Poll;

    use super::READERS;
    use crate::runtime::{Runtime, spawn, yield_now};
    use crate::{Cancelled, Outcome};

    fn waiting() -> usize {
        READERS.with(|t| t.borrow().len())
    }

    fn room() -> usize {
        READERS.with(|t| t.borrow().capacity())
    }

    /// A task that finishes when `go` is set.
    async fn gated(go: Rc<Cell<bool>>) -> Result<u32, Cancelled> {
        while !go.get() {
            yield_now().await;
        }
        Ok(7)
    }

    #[test]
    fn a_waiting_handle_has_an_entry_until_its_task_ends() {
        let rt = Runtime::new().unwrap();
        let out = rt.block_on(async {
            let go = Rc::new(Cell::new(false));
            let h = spawn(gated(go.clone()));
            let mut h = std::pin::pin!(h);
            // Polled twice with the same waker: still one entry.
            for _ in 0..2 {
                let p = poll_fn(|cx| Poll::Ready(h.as_mut().poll(cx))).await;
                assert!(p.is_pending());
            }
            assert_eq!(waiting(), 1);
            go.set(true);
            let out = h.await.unwrap();
            assert_eq!(waiting(), 0, "the task's end took the entry");
            out
        });
        assert!(matches!(out, Outcome::Ok(7)));
    }

    #[test]
    fn a_handle_dropped_while_waiting_takes_its_entry() {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let go = Rc::new(Cell::new(false));
            let h = spawn(gated(go.clone()));
            let mut h = Box::pin(h);
            let p = poll_fn(|cx| Poll::Ready(h.as_mut().poll(cx))).await;
            assert!(p.is_pending());
            assert_eq!(waiting(), 1);
            drop(h);
            assert_eq!(waiting(), 0);
            go.set(true);
            yield_now().await;
        });
    }

    #[test]
    fn a_task_dropped_while_its_reader_waits_takes_the_entry() {
        let rt = Runtime::new().unwrap();
        let waits = rt.block_on(async move {
            let h = spawn(gated(Rc::new(Cell::new(false))));
            let mut waits = Box::pin(h);
            let p = poll_fn(|cx| Poll::Ready(waits.as_mut().poll(cx))).await;
            assert!(p.is_pending());
            assert_eq!(waiting(), 1);
            Some(waits) // still waiting; the task never finishes
        });
        drop(rt); // drops the task unfinished
        assert_eq!(waiting(), 0, "the task's drop took the entry");
        drop(waits);
    }

    #[test]
    #[cfg_attr(miri, ignore)] // 10^4 tasks: slow under Miri, and safe code
    fn the_table_gives_its_room_back_after_a_burst() {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let go = Rc::new(Cell::new(false));
            let n = 10_000;
            let handles: Vec<_> = (0..n).map(|_| spawn(gated(go.clone()))).collect();
            let mut all = Box::pin(futures_util_free_join(handles));
            let p = poll_fn(|cx| Poll::Ready(all.as_mut().poll(cx))).await;
            assert!(p.is_pending());
            assert_eq!(waiting(), n);
            let big = room();
            go.set(true);
            assert_eq!(all.await, n);
            assert_eq!(waiting(), 0);
            assert!(big >= n);
            let left = room();
            assert!(
                left <= super::SHRINK_ABOVE,
                "room {left} after holding {n} in {big}"
            );
        });
    }

    /// Polls every handle with its own waker of the polling task (each gets an entry),
    /// until all are done; returns how many finished with `Ok(7)`.
    async fn futures_util_free_join(handles: Vec<crate::JoinHandle<u32, Cancelled>>) -> usize {
        let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
        let mut ok = 0;
        poll_fn(|cx| {
            for slot in handles.iter_mut() {
                if let Some(h) = slot {
                    if let Poll::Ready(out) = std::pin::Pin::new(h).poll(cx) {
                        ok += usize::from(matches!(out, Ok(Outcome::Ok(7))));
                        *slot = None;
                    }
                }
            }
            if handles.iter().all(Option::is_none) {
                Poll::Ready(ok)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}
