//! Pending timers — the sleeps' and the scope deadlines' — in one hierarchical timing
//! wheel.
//!
//! # Why a wheel
//!
//! A runtime arms and disarms far more timers than it fires: every timeout that
//! succeeds, every sleep raced against something else and every scope deadline that
//! was not reached is removed before its time. What a timer store must make cheap is
//! therefore *insert* and *remove*, then *firing a batch* of timers that are due
//! together. A hierarchical wheel does all three in `O(1)` per timer: inserting links
//! the timer into one slot list, removing unlinks it, and expiry takes a whole slot list
//! at once. A binary heap (this module's previous structure) pays `O(log n)` with a
//! cache miss per level on every insert and every pop, and a sorted tree pays the same
//! plus an allocation per node.
//!
//! # Layout
//!
//! Time is counted in *ticks* of 2^20 ns (about 1.05 ms, the grain of the OS's
//! timed wait) from the runtime's start. [`LEVELS`] levels of 64 slots each: a slot of
//! level `l` spans 64^l ticks, so level 0 covers the next ~67 ms tick by tick, level 1
//! the next ~4.3 s, level 2 ~4.6 min, level 3 ~4.9 h, and level 7 the whole range of a
//! `u64` of nanoseconds (~584 years). A timer due at tick `t`, seen from the wheel's
//! current tick `cur < t`, sits at the level of the highest base-64 digit in which `t`
//! and `cur` differ, in the slot named by that digit of `t`. Consequences used below:
//!
//! * every timer of level `l` is due before every timer of level `l + 1`, and the
//!   occupied slots of a level lie after the slot of `cur`'s own digit — so the
//!   earliest timer is in the first occupied slot (a 64-bit mask per level) of the
//!   lowest occupied level;
//! * when `cur` reaches the start of a slot of level `l > 0`, that slot's timers are
//!   placed again ("cascaded"), each into a lower level. A timer moves at most once per
//!   level, so a 1-hour sleep costs a few list moves over its life, a 5 ms one none.
//!
//! Slot lists are doubly linked through the timers' slab entries (`u32` indices):
//! removal is an unlink, `O(1)`, with nothing left behind.
//!
//! Timers whose tick has been reached (`t <= cur`) leave the wheel for `near`, a small
//! binary heap ordered by exact deadline, then creation order. The wheel only says
//! *which* timers may be due; `near` decides by the exact nanosecond, so nothing ever
//! fires before its deadline (a sleep woken by its timer always sees `now >= deadline`,
//! and a scope deadline never cancels early), and one turn fires everything due in
//! deadline order, equal deadlines by creation — also after a paused clock's `jump`
//! made timers of many ticks and levels due at once. `near` holds one tick's worth of
//! timers in the common case. A timer removed while in `near` leaves a stale heap
//! entry (lazy deletion, named by its sequence number); stale entries are skipped when
//! they reach the top and compacted when they outnumber the live ones.
//!
//! Deadlines later than `u64::MAX - 1` ns from the start (past ~584 years; a paused
//! clock can get there) are not rounded down: they go to `far`, a heap keyed by the
//! exact `Instant`, asked only when the wheel and `near` are empty — every far deadline
//! is later than every other one.
//!
//! # The next deadline
//!
//! [`Timers::next_deadline`] is exact: the paused clock jumps to it, so it must be the
//! earliest *live* timer, to the nanosecond. It cascades the first occupied slots
//! ahead of the clock until a timer reaches `near` (work the wheel does anyway when the
//! time comes; `cur` may run ahead of the clock — `near` compares exact deadlines, so
//! that is harmless). The real clock's run loop asks [`Timers::next_wake`] instead: a
//! lower bound (the start of the first occupied slot above level 0) that costs nothing
//! and wakes the loop at most once per level early.
//!
//! When the last timer goes and the store had grown past [`SHRINK_MIN`] slots, its
//! memory is given back: a burst of a million timers does not stay resident.
//!
//! A timer either wakes a `Waker` (sleeps, and anything else that waits for a time) or
//! tells the status tree that a scope's deadline has come (see `runtime/cancel`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use slab::Slab;

use super::cancel::NodeKey;
use super::core::RuntimeId;
use super::wake_list::{Target, WakeBy};

/// A tick is 2^`TICK_SHIFT` nanoseconds.
const TICK_SHIFT: u32 = 20;

/// Bits of the tick per level: 64 slots.
const LEVEL_BITS: u32 = 6;

const SLOTS: usize = 1 << LEVEL_BITS;

/// Enough levels for every tick of a `u64` of nanoseconds (44 bits of ticks).
const LEVELS: usize = 8;

/// "No timer" in the slot lists.
const NIL: u32 = u32::MAX;

/// [`Slot::pos`] of a timer in `near`.
const IN_NEAR: u16 = u16::MAX - 1;

/// [`Slot::pos`] of a timer in `far`.
const IN_FAR: u16 = u16::MAX;

/// Below this many stale heap entries the heaps are never compacted.
const COMPACT_MIN: usize = 1024;

/// Capacity (slots) above which an emptied store frees its memory.
const SHRINK_MIN: usize = 1024;

/// Whether the heap entry `(seq, slot)` still names a pending timer (not a stale one).
fn is_live(slots: &Slab<Slot>, seq: u64, slot: u32) -> bool {
    slots.get(slot as usize).is_some_and(|s| s.seq == seq)
}

/// The tick a deadline (in nanoseconds from the start) falls in.
fn tick_of(ns: u64) -> u64 {
    ns >> TICK_SHIFT
}

/// The level at which a timer due at tick `t` sits, seen from tick `cur < t`.
fn level_of(cur: u64, t: u64) -> usize {
    debug_assert!(t > cur);
    let top_bit = 63 - (cur ^ t).leading_zeros();
    (top_bit / LEVEL_BITS) as usize
}

/// The index of the slot list (level and slot) of tick `t` at `level`.
fn list_of(level: usize, t: u64) -> usize {
    level * SLOTS + ((t >> (LEVEL_BITS * level as u32)) as usize & (SLOTS - 1))
}

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
    /// Nanoseconds from `base`; `u64::MAX` for a far timer (its `Instant` is in `far`).
    deadline: u64,
    seq: u64,
    /// Neighbours in the slot list (wheel timers only).
    prev: u32,
    next: u32,
    /// Which slot list holds the timer (`level * 64 + slot`), or [`IN_NEAR`], [`IN_FAR`].
    pos: u16,
    entry: TimerEntry,
}

/// All pending timers of one runtime.
pub(crate) struct Timers {
    slots: Slab<Slot>,
    /// Head of every slot list, level by level.
    heads: [u32; LEVELS * SLOTS],
    /// Per level, bit `s` set: slot `s`'s list is not empty.
    occupied: [u64; LEVELS],
    /// The wheel's current tick: every timer due at a tick `<= cur` is in `near`.
    cur: u64,
    /// Timers whose tick has been reached, by `(deadline, seq)`; may hold stale entries.
    near: BinaryHeap<Reverse<(u64, u64, u32)>>,
    near_live: usize,
    /// Deadlines beyond `u64::MAX - 1` nanoseconds from `base` (see the module doc).
    far: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    far_live: usize,
    seq: u64,
    /// Time zero of the deadlines.
    base: Instant,
    runtime: RuntimeId,
}

impl Timers {
    /// The store of runtime `runtime`, whose deadlines count from `base` (earlier
    /// deadlines count as `base`).
    pub(crate) fn new(base: Instant, runtime: RuntimeId) -> Timers {
        Timers {
            slots: Slab::new(),
            heads: [NIL; LEVELS * SLOTS],
            occupied: [0; LEVELS],
            cur: 0,
            near: BinaryHeap::new(),
            near_live: 0,
            far: BinaryHeap::new(),
            far_live: 0,
            seq: 0,
            base,
            runtime,
        }
    }

    /// `at` in nanoseconds from `base`; `u64::MAX` stands for "at or after the wheel's
    /// end" (a deadline there goes to `far`, a `now` there has passed every wheel
    /// deadline).
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, ns: u64) -> Instant {
        self.base + Duration::from_nanos(ns)
    }

    pub(crate) fn insert(&mut self, at: Instant, entry: TimerEntry) -> TimerKey {
        self.seq += 1;
        let seq = self.seq;
        let deadline = self.nanos(at);
        let slot = self.slots.insert(Slot {
            deadline,
            seq,
            prev: NIL,
            next: NIL,
            pos: IN_FAR,
            entry,
        });
        let slot = match u32::try_from(slot) {
            Ok(s) if s != NIL => s,
            _ => panic!("scope_runtime: more than 4 billion timers"),
        };
        if deadline == u64::MAX {
            self.far.push(Reverse((at, seq, slot)));
            self.far_live += 1;
        } else {
            self.place(slot);
        }
        TimerKey {
            slot,
            runtime: self.runtime,
            seq: NonZeroU64::new(seq).expect("timer sequence numbers start at 1"),
        }
    }

    /// Puts the (wheel-range) timer `slot`, in no list, where its deadline belongs
    /// from `cur`: a slot list, or `near` if its tick has been reached.
    fn place(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        let t = tick_of(s.deadline);
        if t <= self.cur {
            s.pos = IN_NEAR;
            self.near.push(Reverse((s.deadline, s.seq, slot)));
            self.near_live += 1;
            return;
        }
        let level = level_of(self.cur, t);
        let list = list_of(level, t);
        let head = self.heads[list];
        s.pos = list as u16;
        s.prev = NIL;
        s.next = head;
        if head != NIL {
            self.slots[head as usize].prev = slot;
        }
        self.heads[list] = slot;
        self.occupied[level] |= 1 << (list % SLOTS);
    }

    /// Takes the wheel timer `slot` out of its slot list.
    fn unlink(&mut self, slot: u32) {
        let s = &self.slots[slot as usize];
        let (prev, next, list) = (s.prev, s.next, s.pos as usize);
        debug_assert!(list < LEVELS * SLOTS);
        if prev == NIL {
            self.heads[list] = next;
            if next == NIL {
                self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
            }
        } else {
            self.slots[prev as usize].next = next;
        }
        if next != NIL {
            self.slots[next as usize].prev = prev;
        }
    }

    /// The first occupied slot list: `(level, list index, first tick it spans)`. Its
    /// timers are due before every other wheel timer's.
    fn first_slot(&self) -> Option<(usize, usize, u64)> {
        let level = self.occupied.iter().position(|&m| m != 0)?;
        let slot = self.occupied[level].trailing_zeros() as usize;
        let span_bits = LEVEL_BITS * level as u32;
        // `cur` with the digits of `level` and below replaced: the slot's first tick.
        let block = self.cur >> (span_bits + LEVEL_BITS) << (span_bits + LEVEL_BITS);
        let start = block | ((slot as u64) << span_bits);
        debug_assert!(
            start > self.cur,
            "occupied slots lie after the current tick"
        );
        Some((level, level * SLOTS + slot, start))
    }

    /// Moves the wheel to tick `to` (never back): every slot list that starts at or
    /// before `to` is emptied, its timers placed anew (lower, or into `near`).
    fn advance(&mut self, to: u64) {
        while to > self.cur {
            let Some((level, list, start)) = self.first_slot().filter(|s| s.2 <= to) else {
                self.cur = to;
                return;
            };
            self.cur = start;
            let mut next = std::mem::replace(&mut self.heads[list], NIL);
            self.occupied[level] &= !(1 << (list % SLOTS));
            while next != NIL {
                let slot = next;
                next = self.slots[slot as usize].next;
                self.place(slot);
            }
        }
    }

    /// Whether `key` names a pending timer of this store.
    fn holds(&self, key: TimerKey) -> bool {
        key.runtime == self.runtime && is_live(&self.slots, key.seq.get(), key.slot)
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<TimerEntry> {
        if !self.holds(key) {
            return None;
        }
        match self.slots[key.slot as usize].pos {
            IN_NEAR => self.near_live -= 1,
            IN_FAR => self.far_live -= 1,
            _ => self.unlink(key.slot),
        }
        let entry = self.slots.remove(key.slot as usize).entry;
        if self.slots.is_empty() {
            self.emptied();
        } else {
            self.maybe_compact();
        }
        Some(entry)
    }

    /// No timer is left: the slot lists are empty and every heap entry is stale. Drop
    /// them all at once, and give the memory of a past burst back.
    fn emptied(&mut self) {
        debug_assert!(self.occupied.iter().all(|&m| m == 0));
        if self.slots.capacity() > SHRINK_MIN {
            self.near = BinaryHeap::new();
            self.far = BinaryHeap::new();
            self.slots = Slab::new();
        } else {
            self.near.clear();
            self.far.clear();
        }
        self.near_live = 0;
        self.far_live = 0;
    }

    fn maybe_compact(&mut self) {
        let stale = self.near.len() - self.near_live + self.far.len() - self.far_live;
        if stale > COMPACT_MIN && stale > self.near_live + self.far_live {
            let slots = &self.slots;
            self.near
                .retain(|Reverse((_, seq, slot))| is_live(slots, *seq, *slot));
            self.far
                .retain(|Reverse((_, seq, slot))| is_live(slots, *seq, *slot));
            self.near.shrink_to(2 * self.near.len());
            self.far.shrink_to(2 * self.far.len());
        }
    }

    /// Replaces whom a pending `Wake` timer wakes (a future polled with a new waker).
    /// `None`: `key` names no pending timer here (it fired, or was removed).
    /// `Some(replaced)`: it is pending; the replaced target, if any, is to be dropped
    /// after the borrow.
    pub(crate) fn update_target(
        &mut self,
        key: TimerKey,
        by: WakeBy<'_>,
    ) -> Option<Option<Target>> {
        if !self.holds(key) {
            return None;
        }
        if let Some(Slot {
            entry: TimerEntry::Wake(t),
            ..
        }) = self.slots.get_mut(key.slot as usize)
        {
            if !t.same(by) {
                return Some(Some(std::mem::replace(t, by.to_target())));
            }
        }
        Some(None)
    }

    /// Drops stale entries from the top of `near` (and of `far` when `near` is empty).
    fn skip_stale(&mut self) {
        while let Some(&Reverse((_, seq, slot))) = self.near.peek() {
            if is_live(&self.slots, seq, slot) {
                return;
            }
            self.near.pop();
        }
        while let Some(&Reverse((_, seq, slot))) = self.far.peek() {
            if is_live(&self.slots, seq, slot) {
                return;
            }
            self.far.pop();
        }
    }

    /// When the earliest pending timer is due, exactly (the paused clock jumps there).
    /// May cascade slots ahead of the clock to find it.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        loop {
            self.skip_stale();
            if let Some(&Reverse((ns, _, _))) = self.near.peek() {
                return Some(self.instant(ns));
            }
            match self.first_slot() {
                Some((_, _, start)) => self.advance(start),
                None => return self.far.peek().map(|Reverse((at, _, _))| *at),
            }
        }
    }

    /// A time at or before the earliest pending timer, never after it: when the real
    /// clock's run loop must wake up next. Exact when that timer is in `near` or in
    /// the wheel's level 0, else the start of its slot (the loop then wakes early, at
    /// most once per level, and cascades).
    pub(crate) fn next_wake(&mut self) -> Option<Instant> {
        self.skip_stale();
        if let Some(&Reverse((ns, _, _))) = self.near.peek() {
            return Some(self.instant(ns));
        }
        match self.first_slot() {
            Some((0, list, _)) => {
                let mut min = u64::MAX;
                let mut slot = self.heads[list];
                while slot != NIL {
                    let s = &self.slots[slot as usize];
                    min = min.min(s.deadline);
                    slot = s.next;
                }
                Some(self.instant(min))
            }
            Some((_, _, start)) => Some(self.instant(start << TICK_SHIFT)),
            None => self.far.peek().map(|Reverse((at, _, _))| *at),
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`. The timers due
    /// at `now` come out in deadline order, equal deadlines by creation.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerEntry> {
        let now_ns = self.nanos(now);
        self.advance(tick_of(now_ns));
        let slot = loop {
            if let Some(&Reverse((at, seq, slot))) = self.near.peek() {
                if at > now_ns {
                    return None;
                }
                self.near.pop();
                if is_live(&self.slots, seq, slot) {
                    self.near_live -= 1;
                    break slot;
                }
            } else {
                // Only far deadlines can be left that are due: `now` is past the
                // wheel's end, so `advance` moved every wheel timer to `near`.
                if now_ns != u64::MAX {
                    return None;
                }
                let &Reverse((at, seq, slot)) = self.far.peek()?;
                if at > now {
                    return None;
                }
                self.far.pop();
                if is_live(&self.slots, seq, slot) {
                    self.far_live -= 1;
                    break slot;
                }
            }
        };
        let entry = self.slots.remove(slot as usize).entry;
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
        self.heads = [NIL; LEVELS * SLOTS];
        self.occupied = [0; LEVELS];
        self.near.clear();
        self.far.clear();
        self.near_live = 0;
        self.far_live = 0;
        self.slots.drain().map(|s| s.entry).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::task::Waker;

    fn store() -> Timers {
        Timers::new(Instant::now(), RuntimeId::next())
    }

    fn noop() -> TimerEntry {
        TimerEntry::Wake(Target::Waker(Waker::noop().clone()))
    }

    /// An entry that says which one it is when it fires.
    fn tagged(id: u32) -> TimerEntry {
        TimerEntry::Deadline {
            node: id,
            serial: 0,
        }
    }

    fn tag(e: TimerEntry) -> u32 {
        match e {
            TimerEntry::Deadline { node, .. } => node,
            TimerEntry::Wake(_) => panic!("an untagged timer fired"),
        }
    }

    /// Everything due at `now`, in firing order.
    fn fire(t: &mut Timers, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| t.pop_expired(now)).map(tag).collect()
    }

    /// The wheel level a timer sits at (`None`: in `near` or `far`).
    fn level(t: &Timers, k: TimerKey) -> Option<usize> {
        let pos = t.slots[k.slot as usize].pos as usize;
        (pos < LEVELS * SLOTS).then_some(pos / SLOTS)
    }

    fn ns(n: u64) -> Duration {
        Duration::from_nanos(n)
    }

    #[test]
    fn pops_in_deadline_then_creation_order() {
        let mut t = store();
        let base = t.base;
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
    fn one_tick_fires_by_exact_deadline_never_early() {
        let mut t = store();
        let base = t.base;
        // All in tick 5 (ticks are ~1.05 ms), inserted out of order, two equal.
        let tick = base + ns(5 << TICK_SHIFT);
        for (id, off) in [(0, 900_000), (1, 100_000), (2, 500_000), (3, 100_000)] {
            t.insert(tick + ns(off), tagged(id));
        }
        assert!(
            fire(&mut t, tick + ns(99_999)).is_empty(),
            "none is due yet"
        );
        assert_eq!(fire(&mut t, tick + ns(100_000)), [1, 3]);
        assert_eq!(fire(&mut t, tick + ns(899_999)), [2]);
        assert_eq!(t.next_deadline(), Some(tick + ns(900_000)));
        assert_eq!(fire(&mut t, tick + ns(900_000)), [0]);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn cascades_across_every_level() {
        let mut t = store();
        let base = t.base;
        // One timer per level (the level of a tick is its highest base-64 digit), plus
        // an hour and three years; an odd nanosecond each so rounding would show.
        let mut deadlines: Vec<Duration> = (0..LEVELS as u32)
            .map(|l| ns((3u64 << (TICK_SHIFT + LEVEL_BITS * l)) + 7))
            .collect();
        deadlines.push(Duration::from_secs(3600) + ns(1));
        deadlines.push(Duration::from_secs(3 * 365 * 86_400) + ns(3));
        let mut keys = Vec::new();
        for (id, d) in deadlines.iter().enumerate().rev() {
            keys.push((id, t.insert(base + *d, tagged(id as u32))));
        }
        for &(id, k) in &keys {
            if id < LEVELS {
                assert_eq!(level(&t, k), Some(id), "timer {id}");
            }
        }
        let mut order: Vec<usize> = (0..deadlines.len()).collect();
        order.sort_by_key(|&i| deadlines[i]);
        for i in order {
            let at = base + deadlines[i];
            assert_eq!(t.next_deadline(), Some(at));
            assert!(
                fire(&mut t, at - ns(1)).is_empty(),
                "timer {i} not before its deadline"
            );
            assert_eq!(fire(&mut t, at), [i as u32]);
        }
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn a_long_jump_fires_many_levels_in_deadline_order() {
        let mut t = store();
        let base = t.base;
        let secs = Duration::from_secs;
        let plan = [(0, secs(7200)), (1, secs(1)), (2, secs(300)), (3, secs(2))];
        for (id, d) in plan {
            t.insert(base + d, tagged(id));
        }
        t.insert(base + secs(7201), tagged(9));
        assert_eq!(fire(&mut t, base + secs(7200)), [1, 3, 2, 0]);
        assert_eq!(t.next_deadline(), Some(base + secs(7201)));
    }

    #[test]
    fn removal_unlinks_from_any_place_in_a_slot_list() {
        let mut t = store();
        let base = t.base;
        let at = base + Duration::from_millis(30);
        let keys: Vec<_> = (0..5)
            .map(|i| t.insert(at + ns(i), tagged(i as u32)))
            .collect();
        let l = level(&t, keys[0]).unwrap();
        let list = t.slots[keys[0].slot as usize].pos as usize;
        assert!(
            keys.iter()
                .all(|k| t.slots[k.slot as usize].pos as usize == list)
        );
        // The list is newest first: 4 is its head, 0 its tail; take the middle, the
        // head and the tail.
        for i in [2, 4, 0] {
            assert!(t.remove(keys[i]).is_some());
            assert!(t.remove(keys[i]).is_none(), "removed once");
        }
        assert_ne!(t.occupied[l], 0);
        assert_eq!(fire(&mut t, at + Duration::from_secs(1)), [1, 3]);
        // Emptied by removal: the slot's bit goes too.
        let k = t.insert(at + Duration::from_secs(5), tagged(7));
        let l = level(&t, k).unwrap();
        assert_ne!(t.occupied[l], 0);
        assert!(t.remove(k).is_some());
        assert!(t.occupied.iter().all(|&m| m == 0));
        assert_eq!(t.next_deadline(), None);
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
    fn wheel_removals_leave_nothing_behind_and_near_ones_are_compacted() {
        let mut t = store();
        let base = t.base;
        let keys: Vec<_> = (0..5000u64)
            .map(|i| t.insert(base + Duration::from_millis(i + 2), noop()))
            .collect();
        assert!(keys.iter().all(|k| level(&t, *k).is_some()));
        for k in &keys[..4990] {
            assert!(t.remove(*k).is_some());
        }
        assert_eq!(t.len(), 10);
        assert_eq!(t.near.len(), 0, "the wheel keeps no stale entries");
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(4992)));
        // Timers of the current tick are in `near`, where removal is lazy.
        let near: Vec<_> = (0..5000u64)
            .map(|i| t.insert(base + ns(i), noop()))
            .collect();
        assert!(near.iter().all(|k| level(&t, *k).is_none()));
        for k in &near {
            assert!(t.remove(*k).is_some());
        }
        assert!(t.near.len() < 5000, "the stale entries were compacted");
        let fired = std::iter::from_fn(|| t.pop_expired(base + Duration::from_secs(10))).count();
        assert_eq!(fired, 10);
    }

    #[test]
    fn next_deadline_is_the_earliest_live_timer() {
        let mut t = store();
        let base = t.base;
        let ms = Duration::from_millis;
        let a = t.insert(base + ms(5), tagged(0)); // level 0
        let b = t.insert(base + ms(900), tagged(1)); // level 1
        let _c = t.insert(base + Duration::from_secs(4000) + ns(11), tagged(2));
        assert_eq!(t.next_deadline(), Some(base + ms(5)));
        assert!(t.remove(a).is_some());
        assert_eq!(t.next_deadline(), Some(base + ms(900)));
        // Finding it moved the wheel ahead of the clock; nothing fires early for that,
        // and a timer inserted before it (now in the wheel's past) comes first.
        assert!(fire(&mut t, base + ms(899)).is_empty());
        let d = t.insert(base + ms(600), tagged(3));
        assert_eq!(t.next_deadline(), Some(base + ms(600)));
        assert!(t.next_wake().unwrap() <= base + ms(600));
        assert!(t.remove(d).is_some());
        assert!(t.remove(b).is_some());
        // A lower bound for the real clock: never after the earliest timer.
        let wake = t.next_wake().unwrap();
        assert!(wake <= base + Duration::from_secs(4000) + ns(11));
        assert_eq!(
            t.next_deadline(),
            Some(base + Duration::from_secs(4000) + ns(11))
        );
        assert_eq!(fire(&mut t, base + Duration::from_secs(4000) + ns(11)), [2]);
    }

    #[test]
    fn next_wake_is_never_late_and_exact_at_level_0() {
        let mut t = store();
        let base = t.base;
        // Exactly at the first tick of a level-1 slot and of a level-2 slot: a bound
        // one tick too late would miss them.
        for l in [2u32, 1] {
            let at = base + ns(1 << (TICK_SHIFT + LEVEL_BITS * l));
            let k = t.insert(at, noop());
            assert_eq!(level(&t, k), Some(l as usize));
            assert!(t.next_wake().unwrap() <= at, "level {l}");
        }
        t.insert(base + ns(5 << TICK_SHIFT) + ns(3), noop());
        t.insert(base + ns(5 << TICK_SHIFT) + ns(2), noop());
        assert_eq!(t.next_wake(), Some(base + ns(5 << TICK_SHIFT) + ns(2)));
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
        assert_eq!(t.near.capacity(), 0);
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
        // `kb` is pending here (whether the target counts as replaced depends on
        // whether two uses of `Waker::noop()` compare equal, which Miri does not
        // promise).
        assert!(b.update_target(kb, WakeBy::Waker(Waker::noop())).is_some());
        assert_eq!(b.len(), 1);
        assert!(b.remove(kb).is_some());
        assert!(a.remove(ka).is_some());
    }

    #[test]
    fn take_all_empties_every_place() {
        let mut t = store();
        let base = t.base;
        t.insert(base, noop());
        t.insert(base + Duration::from_secs(3600), noop());
        t.insert(base + Duration::from_secs(1 << 40), noop());
        assert_eq!(t.take_all().len(), 3);
        assert_eq!(t.len(), 0);
        assert_eq!(t.next_deadline(), None);
        assert!(t.pop_expired(base + Duration::from_secs(1 << 41)).is_none());
    }

    #[test]
    fn keys_stay_small() {
        assert_eq!(std::mem::size_of::<Option<TimerKey>>(), 16);
    }

    /// A small deterministic generator (xorshift64*), so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// A duration of a random scale: nanoseconds to centuries, and past the wheel.
        fn span(&mut self) -> Duration {
            match self.below(10) {
                0 => ns(self.below(1 << 40) << 24), // up to ~584 years and beyond
                1 => Duration::from_secs(self.below(1 << 42)),
                2 => ns(self.below(1 << 36)),
                3 => ns(self.below(1 << 20)),
                _ => ns(self.below(1 << 28)),
            }
        }
    }

    /// The wheel against a sorted map, over random inserts (all scales, past and
    /// future), removals, clock steps (small and huge) and next-deadline queries.
    #[test]
    fn behaves_like_a_sorted_map() {
        // Miri runs a few short seeds (it is about a thousand times slower).
        let (seeds, steps): (u64, u32) = if cfg!(miri) { (3, 300) } else { (40, 3000) };
        for seed in 1..=seeds {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut t = store();
            let base = t.base;
            let mut now = base;
            let mut model: BTreeMap<(Instant, u64), u32> = BTreeMap::new();
            let mut keys: Vec<(TimerKey, Instant)> = Vec::new();
            for step in 0..steps {
                match rng.below(8) {
                    0..=2 => {
                        // Mostly ahead of the clock, sometimes behind it.
                        let at = if rng.below(8) == 0 {
                            now - rng.span().min(now - base)
                        } else {
                            now + rng.span()
                        };
                        let k = t.insert(at, tagged(step));
                        model.insert((at, k.seq.get()), step);
                        keys.push((k, at));
                    }
                    3 | 4 if !keys.is_empty() => {
                        let (k, at) = keys.swap_remove(rng.below(keys.len() as u64) as usize);
                        // Fired ones are still in `keys`: both say "gone" for them.
                        let expect = model.remove(&(at, k.seq.get()));
                        assert_eq!(t.remove(k).map(tag), expect, "seed {seed} step {step}");
                    }
                    5 => {
                        let expect = model.keys().next().map(|(at, _)| *at);
                        let wake = t.next_wake();
                        assert_eq!(wake.is_some(), expect.is_some(), "seed {seed} step {step}");
                        assert!(wake <= expect, "seed {seed} step {step}: woke late");
                        assert_eq!(t.next_deadline(), expect, "seed {seed} step {step}");
                    }
                    _ => {
                        now += if rng.below(4) == 0 {
                            rng.span()
                        } else {
                            ns(rng.below(1 << 22))
                        };
                        let due: Vec<u32> =
                            model.range(..=(now, u64::MAX)).map(|(_, id)| *id).collect();
                        model.retain(|(at, _), _| *at > now);
                        assert_eq!(fire(&mut t, now), due, "seed {seed} step {step}");
                    }
                }
                assert_eq!(t.len(), model.len(), "seed {seed} step {step}");
            }
        }
    }
}
