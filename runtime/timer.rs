//! Pending timers: an ordered map keyed by `(deadline, sequence number)`.
//!
//! Insert and removal are `O(log n)`; the earliest deadline is the first key. The
//! sequence number makes keys unique, so two timers with the same deadline fire in the
//! order they were created, and a key is a handle that removes exactly one timer (a
//! dropped `Sleep` removes its own entry: no lazy garbage piles up).
//!
//! A timer either wakes a `Waker` (sleeps, and anything else that waits for a time) or
//! cancels a cancel scope whose deadline it is (see `scope/`).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

use crate::scope::ScopeInner;

/// Identifies one pending timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    pub(crate) at: Instant,
    seq: u64,
}

/// What happens when a timer fires.
pub(crate) enum TimerEntry {
    /// Wake this waker (a sleeping future).
    Wake(Waker),
    /// The deadline of this cancel scope has come: cancel it.
    Deadline(Rc<ScopeInner>),
}

/// All pending timers of one runtime.
#[derive(Default)]
pub(crate) struct Timers {
    map: BTreeMap<TimerKey, TimerEntry>,
    seq: u64,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, entry: TimerEntry) -> TimerKey {
        self.seq += 1;
        let key = TimerKey { at, seq: self.seq };
        self.map.insert(key, entry);
        key
    }

    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<TimerEntry> {
        self.map.remove(&key)
    }

    /// Replaces the waker of a pending `Wake` timer (a future polled with a new waker).
    pub(crate) fn update_waker(&mut self, key: TimerKey, waker: &Waker) {
        if let Some(TimerEntry::Wake(w)) = self.map.get_mut(&key) {
            if !w.will_wake(waker) {
                w.clone_from(waker);
            }
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.map.keys().next().map(|k| k.at)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<TimerEntry> {
        let entry = self.map.first_entry()?;
        if entry.key().at <= now {
            Some(entry.remove())
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Takes every timer out (used at shutdown so their wakers drop outside borrows).
    pub(crate) fn take_all(&mut self) -> BTreeMap<TimerKey, TimerEntry> {
        std::mem::take(&mut self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> TimerEntry {
        TimerEntry::Wake(Waker::noop().clone())
    }

    #[test]
    fn pops_in_deadline_then_creation_order() {
        let mut t = Timers::default();
        let base = Instant::now();
        let late = t.insert(base + Duration::from_millis(20), noop());
        let early = t.insert(base + Duration::from_millis(10), noop());
        let early2 = t.insert(base + Duration::from_millis(10), noop());
        assert!(early < early2 && early2 < late);
        assert_eq!(t.next_deadline(), Some(base + Duration::from_millis(10)));
        assert!(t.pop_expired(base).is_none());
        assert!(t.pop_expired(base + Duration::from_millis(15)).is_some());
        assert!(t.pop_expired(base + Duration::from_millis(15)).is_some());
        assert!(t.pop_expired(base + Duration::from_millis(15)).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn removal_by_key_removes_exactly_one() {
        let mut t = Timers::default();
        let at = Instant::now();
        let a = t.insert(at, noop());
        let b = t.insert(at, noop());
        assert!(t.remove(a).is_some());
        assert!(t.remove(a).is_none());
        assert_eq!(t.len(), 1);
        assert!(t.remove(b).is_some());
        assert_eq!(t.next_deadline(), None);
    }
}
