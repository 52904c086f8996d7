//! Pending timers: a binary heap of deadlines with lazy deletion (as in Trio).
//!
//! Each timer is an entry in a slab; the heap holds `(deadline, seq, slot)` triples.
//! A [`TimerKey`] names the slot and the sequence number, so it removes exactly its own
//! timer even after the slot is reused.
//!
//! * insert: `O(log n)` heap push plus a slab insert.
//! * remove (a dropped `Sleep`, a scope that exits before its deadline): `O(1)` — the
//!   slab entry goes away and the heap triple becomes *stale*.
//! * pop: stale triples are skipped when they reach the top and are due (asking for
//!   the next deadline skips them at once, so an idle paused clock never jumps to a
//!   cancelled deadline). When stale triples outnumber live ones (and there are more
//!   than [`COMPACT_MIN`]), the heap is rebuilt from the live entries; when no timer is
//!   left it is simply cleared. Garbage never exceeds the live set for long.
//!
//! Sequence numbers also order timers with equal deadlines by creation.
//!
//! Deadlines are kept as `u64` nanoseconds from the runtime's start (8 bytes, not an
//! `Instant`'s 16) — about 584 years. A deadline later than that is not rounded down:
//! it goes to a second heap, `far`, keyed by its exact `Instant`. Every far deadline is
//! later than every near one, so the near heap is always asked first. (A paused clock
//! can jump 2^40 s; the sleep ends then, not 584 years in.)
//!
//! When the last timer goes and the store had grown past [`SHRINK_MIN`] slots, its
//! memory is given back: a burst of a million timers does not stay resident.
//!
//! A timer either wakes a `Waker` (sleeps, and anything else that waits for a time) or
//! tells the status tree that a scope's deadline has come (see `runtime/cancel`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::Instant;

use slab::Slab;

use super::cancel::NodeKey;
use super::core::RuntimeId;
use super::wake_list::{Target, WakeBy};

/// Whether the heap triple `(seq, slot)` still names a pending timer (not a stale one).
fn is_live(slots: &Slab<Slot>, seq: u64, slot: usize) -> bool {
    slots.get(slot).is_some_and(|s| s.seq == seq)
}

/// Below this many stale heap entries the heap is never rebuilt.
const COMPACT_MIN: usize = 1024;

/// Capacity (slots) above which an emptied store frees its memory.
const SHRINK_MIN: usize = 1024;

/// Identifies one pending timer, of one runtime: a key of another runtime's store
/// removes nothing here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    runtime: RuntimeId,
    /// Never zero, so `Option<TimerKey>` (held by every `Sleep`) is 16 bytes.
    seq: NonZeroU64,
}

impl TimerKey {
    /// The runtime whose store holds this timer.
    pub(crate) fn runtime(self) -> RuntimeId {
        self.runtime
    }
}

/// What happens when a timer fires.
pub(crate) enum TimerEntry {
    /// Wake this task or waker (a sleeping future).
    Wake(Target),
    /// The deadline of the scope at this tree node has come: cancel it (if `serial`
    /// still names that node).
    Deadline { node: NodeKey, serial: u64 },
}

struct Slot {
    seq: u64,
    entry: TimerEntry,
}

/// All pending timers of one runtime.
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    /// Deadlines beyond `u64::MAX - 1` nanoseconds from `base` (see the module doc).
    far: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    slots: Slab<Slot>,
    seq: u64,
    /// Time zero of the heap's deadlines.
    base: Instant,
    runtime: RuntimeId,
}

impl Timers {
    /// The store of runtime `runtime`, whose deadlines count from `base` (earlier
    /// deadlines count as `base`).
    pub(crate) fn new(base: Instant, runtime: RuntimeId) -> Timers {
        Timers {
            heap: BinaryHeap::new(),
            far: BinaryHeap::new(),
            slots: Slab::new(),
            seq: 0,
            base,
            runtime,
        }
    }

    /// `at` in the near heap's unit; `u64::MAX` stands for "at or after the near
    /// heap's end" (a deadline there goes to `far`, a `now` there has passed every
    /// near deadline).
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn live(&self, seq: u64, slot: usize) -> bool {
        is_live(&self.slots, seq, slot)
    }

    pub(crate) fn insert(&mut self, at: Instant, entry: TimerEntry) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let slot = self.slots.insert(Slot { seq, entry });
        match self.nanos(at) {
            u64::MAX => self.far.push(Reverse((at, seq, slot))),
            ns => self.heap.push(Reverse((ns, seq, slot))),
        }
        TimerKey {
            slot: u32::try_from(slot).expect("scope_runtime: more than 4 billion timers"),
            runtime: self.runtime,
            seq: NonZeroU64::new(seq).expect("timer sequence numbers start at 1"),
        }
    }

    /// Whether `key` names a pending timer of this store.
    fn holds(&self, key: TimerKey) -> bool {
        key.runtime == self.runtime && self.live(key.seq.get(), key.slot as usize)
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<TimerEntry> {
        if !self.holds(key) {
            return None;
        }
        let entry = self.slots.remove(key.slot as usize).entry;
        if self.slots.is_empty() {
            self.emptied();
        } else {
            self.maybe_compact();
        }
        Some(entry)
    }

    /// No timer is left: every heap entry is stale. Drop them all at once, and give
    /// the memory of a past burst back.
    fn emptied(&mut self) {
        if self.slots.capacity() > SHRINK_MIN {
            self.heap = BinaryHeap::new();
            self.far = BinaryHeap::new();
            self.slots = Slab::new();
        } else {
            self.heap.clear();
            self.far.clear();
        }
    }

    fn stale(&self) -> usize {
        self.heap.len() + self.far.len() - self.slots.len()
    }

    fn maybe_compact(&mut self) {
        let stale = self.stale();
        if stale > COMPACT_MIN && stale > self.slots.len() {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, seq, slot))| is_live(slots, *seq, *slot));
            self.far
                .retain(|Reverse((_, seq, slot))| is_live(slots, *seq, *slot));
            self.heap.shrink_to(2 * self.heap.len());
        }
    }

    /// Replaces whom a pending `Wake` timer wakes (a future polled with a new waker).
    /// Returns the replaced target, to drop after the borrow.
    pub(crate) fn update_target(&mut self, key: TimerKey, by: WakeBy<'_>) -> Option<Target> {
        if !self.holds(key) {
            return None;
        }
        if let Some(Slot {
            entry: TimerEntry::Wake(t),
            ..
        }) = self.slots.get_mut(key.slot as usize)
        {
            if !t.same(by) {
                return Some(std::mem::replace(t, by.to_target()));
            }
        }
        None
    }

    /// Drops stale triples from the tops of the heaps.
    fn skip_stale(&mut self) {
        while let Some(&Reverse((_, seq, slot))) = self.heap.peek() {
            if self.live(seq, slot) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.is_empty() {
            while let Some(&Reverse((_, seq, slot))) = self.far.peek() {
                if self.live(seq, slot) {
                    break;
                }
                self.far.pop();
            }
        }
    }

    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_stale();
        match self.heap.peek() {
            Some(Reverse((ns, _, _))) => Some(self.base + std::time::Duration::from_nanos(*ns)),
            None => self.far.peek().map(|Reverse((at, _, _))| *at),
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`. Stale entries are
    /// only popped once they are due too: a heap whose top is a cancelled timer far in
    /// the future costs nothing here.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerEntry> {
        let near_now = self.nanos(now);
        let (seq, slot) = loop {
            if let Some(&Reverse((at, seq, slot))) = self.heap.peek() {
                if at > near_now {
                    return None;
                }
                self.heap.pop();
                if self.live(seq, slot) {
                    break (seq, slot);
                }
            } else {
                // Only far deadlines are left (every one later than any near one).
                let &Reverse((at, seq, slot)) = self.far.peek()?;
                if at > now {
                    return None;
                }
                self.far.pop();
                if self.live(seq, slot) {
                    break (seq, slot);
                }
            }
        };
        debug_assert!(self.live(seq, slot));
        let entry = self.slots.remove(slot).entry;
        if self.slots.is_empty() {
            self.emptied();
        }
        Some(entry)
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Takes every timer out (used at shutdown so their wakers drop outside borrows).
    pub(crate) fn take_all(&mut self) -> Vec<TimerEntry> {
        self.heap.clear();
        self.far.clear();
        self.slots.drain().map(|s| s.entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;
    use std::time::Duration;

    fn store() -> Timers {
        Timers::new(Instant::now(), RuntimeId::next())
    }

    fn noop() -> TimerEntry {
        TimerEntry::Wake(Target::Waker(Waker::noop().clone()))
    }

    #[test]
    fn pops_in_deadline_then_creation_order() {
        let mut t = store();
        let base = Instant::now();
        let late = t.insert(base + Duration::from_millis(20), noop());
        let early = t.insert(base + Duration::from_millis(10), noop());
        let early2 = t.insert(base + Duration::from_millis(10), noop());
        assert!(early.seq < early2.seq);
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(10)));
        assert!(t.pop_expired(base).is_none());
        assert!(t.pop_expired(base + Duration::from_millis(15)).is_some());
        // Of the two 10 ms timers the older fired first: it is gone, early2 is not.
        assert!(t.remove(early).is_none());
        assert!(t.remove(early2).is_some());
        assert!(t.pop_expired(base + Duration::from_millis(15)).is_none());
        assert_eq!(t.len(), 1);
        assert!(t.remove(late).is_some());
    }

    #[test]
    fn removal_by_key_removes_exactly_one_even_after_slot_reuse() {
        let mut t = store();
        let at = Instant::now();
        let a = t.insert(at, noop());
        assert!(t.remove(a).is_some());
        let b = t.insert(at, noop()); // reuses a's slot
        assert!(t.remove(a).is_none(), "a stale key must not remove b");
        assert_eq!(t.len(), 1);
        assert!(t.pop_expired(at).is_some());
        assert!(t.remove(b).is_none());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn stale_entries_are_skipped_and_compacted() {
        let mut t = store();
        let base = Instant::now();
        let keys: Vec<_> = (0..5000u64)
            .map(|i| t.insert(base + Duration::from_millis(i), noop()))
            .collect();
        for k in &keys[..4990] {
            assert!(t.remove(*k).is_some());
        }
        assert_eq!(t.len(), 10);
        assert!(t.heap.len() < 5000, "the heap was compacted");
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(4990)));
        let mut fired = 0;
        while t.pop_expired(base + Duration::from_secs(10)).is_some() {
            fired += 1;
        }
        assert_eq!(fired, 10);
    }

    #[test]
    fn deadlines_past_584_years_are_kept_exactly() {
        let mut t = store();
        let base = t.base;
        let far = base + Duration::from_secs(1 << 40);
        let farther = far + Duration::from_secs(1);
        let near = base + Duration::from_secs(1);
        let b = t.insert(farther, noop());
        let a = t.insert(far, noop());
        let n = t.insert(near, noop());
        assert_eq!(t.next_deadline(), Some(near));
        assert!(t.pop_expired(near).is_some());
        assert_eq!(
            t.next_deadline(),
            Some(far),
            "not rounded down to ~584 years"
        );
        // 584 years and a bit: nothing far is due yet.
        assert!(t.pop_expired(base + Duration::from_secs(1 << 35)).is_none());
        assert!(t.pop_expired(far).is_some());
        assert!(t.remove(a).is_none(), "a fired");
        assert_eq!(t.next_deadline(), Some(farther));
        assert!(t.remove(b).is_some());
        assert!(t.remove(n).is_none());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn an_emptied_store_gives_its_memory_back() {
        let mut t = store();
        let base = Instant::now();
        let keys: Vec<_> = (0..10_000u64)
            .map(|i| t.insert(base + Duration::from_millis(i), noop()))
            .collect();
        assert!(t.slots.capacity() >= 10_000);
        // Half expire, half are removed: either path empties the store.
        for k in &keys[5_000..] {
            assert!(t.remove(*k).is_some());
        }
        while t.pop_expired(base + Duration::from_secs(60)).is_some() {}
        assert_eq!(t.len(), 0);
        assert_eq!(t.slots.capacity(), 0);
        assert_eq!(t.heap.capacity(), 0);
        // A small store keeps its (small) allocation for reuse.
        let k = t.insert(base, noop());
        assert!(t.remove(k).is_some());
        assert!(t.slots.capacity() > 0);
    }

    #[test]
    fn a_key_of_another_runtime_removes_nothing() {
        let mut a = store();
        let mut b = store();
        let at = Instant::now();
        let ka = a.insert(at, noop());
        let kb = b.insert(at, noop());
        // Same slot, same sequence number, different runtimes.
        assert_eq!((ka.slot, ka.seq), (kb.slot, kb.seq));
        assert!(b.remove(ka).is_none());
        assert!(b.update_target(ka, WakeBy::Waker(Waker::noop())).is_none());
        assert_eq!(b.len(), 1);
        assert!(b.remove(kb).is_some());
        assert!(a.remove(ka).is_some());
    }

    #[test]
    fn keys_stay_small() {
        assert_eq!(std::mem::size_of::<Option<TimerKey>>(), 16);
    }
}
