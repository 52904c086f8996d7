//! Cancelling a task group of N blocked children and collecting how they ended costs
//! no heap allocation per child.
//!
//! A counting global allocator counts the allocations (and reallocations) made on the
//! measuring thread while counting is switched on: from just before `tg.cancel()` (or
//! the enclosing scope's cancel) until the group's future has returned. Every case runs
//! on one runtime that has already been through the same work with the largest N once,
//! so containers that keep their capacity (the task slab, the ready queue, the status
//! tree, the wake buffer) are grown already; what remains is what each cancel and exit
//! allocates. The count for N = 100 and N = 1,000 must be the same.
//!
//! The counters are per thread, so the tests of this binary may run in parallel.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use scope_runtime::{BoxError, CancelError, CancelScope, Runtime, TaskGroup, sleep, yield_now};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: allocations during the thread's teardown are not counted.
    if ON.try_with(Cell::get).unwrap_or(false) {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the same arguments; counting touches
// only two `const`-initialised thread-local cells, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn start_counting() {
    COUNT.with(|c| c.set(0));
    ON.with(|c| c.set(true));
}

fn stop_counting() -> usize {
    ON.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

const HOUR: Duration = Duration::from_secs(3600);

/// How the children are written and who cancels them.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `spawn_cancel_only`, `sleep(HOUR).await?` in a `Result<(), Cancelled>` child;
    /// the group's own `cancel()`.
    CancelOnly,
    /// `spawn`, `sleep(HOUR).await?` in a `Result<(), BoxError>` child (the `?` boxes
    /// the `Cancelled`); the group's own `cancel()`.
    Boxed,
    /// `spawn_cancel_only` children; an enclosing scope is cancelled, so the group's
    /// `Cancelled` travels out of it and the scope absorbs it.
    OuterScope,
}

/// Spawns `n` children blocked in a 1 h sleep, lets them block, then counts the
/// allocations of the cancel and of the group's exit.
fn cancel_and_exit(rt: &Runtime, n: usize, shape: Shape) -> usize {
    rt.block_on(async move {
        let outer = CancelScope::new();
        let handle = outer.clone();
        let out = outer
            .run(async move {
                let group = TaskGroup::new();
                let res = group
                    .run(|tg| async move {
                        for _ in 0..n {
                            match shape {
                                Shape::CancelOnly | Shape::OuterScope => {
                                    tg.spawn_cancel_only(async {
                                        sleep(HOUR).await?;
                                        unreachable!("the 1 h sleep was not cancelled")
                                    });
                                }
                                Shape::Boxed => {
                                    tg.spawn(async {
                                        sleep(HOUR).await?;
                                        unreachable!("the 1 h sleep was not cancelled")
                                    });
                                }
                            }
                        }
                        yield_now().await; // every child runs once and blocks
                        start_counting();
                        match shape {
                            Shape::OuterScope => handle.cancel(),
                            Shape::CancelOnly | Shape::Boxed => tg.cancel(),
                        }
                        Ok(())
                    })
                    .await;
                let allocs = stop_counting();
                match shape {
                    Shape::OuterScope => {
                        let err = res.expect_err("the outer scope's cancel leaves the group");
                        assert!(err.as_cancelled().is_some() && err.failures().is_empty());
                        LAST_OUTER.with(|c| c.set(allocs));
                        Err::<usize, BoxError>(err.into()) // carries the outer `Cancelled`
                    }
                    Shape::CancelOnly | Shape::Boxed => {
                        assert!(matches!(res, Ok(Some(()))), "the group absorbs its cancel");
                        assert!(group.cancelled_caught());
                        Ok(allocs)
                    }
                }
            })
            .await;
        match (shape, out) {
            (Shape::OuterScope, Err(e)) => {
                panic!("the outer scope did not absorb the group's cancellation: {e}")
            }
            (Shape::OuterScope, Ok(Some(_))) => unreachable!("the body returned an error"),
            (Shape::OuterScope, Ok(None)) => {
                assert!(outer.cancelled_caught(), "the outer scope absorbed it");
                LAST_OUTER.with(Cell::get)
            }
            (_, Ok(Some(a))) => a,
            (_, other) => panic!("unexpected end of the outer scope: {other:?}"),
        }
    })
}

thread_local! {
    /// The count of an `OuterScope` run: its body ends with the group's error (which
    /// the outer scope absorbs), so the number goes around that error.
    static LAST_OUTER: Cell<usize> = const { Cell::new(0) };
}

/// Counts for N = 100 and N = 1,000 on one warmed-up runtime.
fn counts(shape: Shape) -> (usize, usize) {
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    cancel_and_exit(&rt, 1000, shape); // warm-up: containers grow to 1,000 children
    let small = cancel_and_exit(&rt, 100, shape);
    let large = cancel_and_exit(&rt, 1000, shape);
    eprintln!("{shape:?}: N=100 -> {small} allocations, N=1000 -> {large}");
    (small, large)
}

#[test]
fn cancelling_the_group_allocates_nothing_per_child() {
    let (small, large) = counts(Shape::CancelOnly);
    assert_eq!(
        small, large,
        "cancel + exit of a group allocates per child: {small} for 100 children, {large} for 1,000"
    );
}

#[test]
fn an_outer_cancel_through_the_group_allocates_nothing_per_child() {
    let (small, large) = counts(Shape::OuterScope);
    assert_eq!(
        small, large,
        "an outer cancel through a group allocates per child: {small} for 100 children, {large} for 1,000"
    );
}

#[test]
fn boxed_children_cost_only_the_box_of_their_question_mark() {
    // `?` from `Cancelled` into `BoxError` is std's `From`: one heap box per child, in
    // the child's own code. The group and the runtime add nothing on top.
    let (small, large) = counts(Shape::Boxed);
    assert_eq!(
        large - small,
        900,
        "boxed children: {small} allocations for 100, {large} for 1,000 (expected one box each)"
    );
}
