//! [`ReadyQueue`]: the run loop's FIFO of tasks to poll, which gives memory back as it
//! drains.
//!
//! A plain `VecDeque` grows to the most tasks ever ready at once and keeps that
//! capacity for the runtime's life: 100,000 tasks spawned in one go leave 1 MiB of
//! queue behind once they are all parked (benchmark B9 counted it as 10 bytes per
//! idle task). This one is a `VecDeque` too (pushes and pops are what they were), plus
//! [`trim`](ReadyQueue::trim), which the run loop calls each time it parks (every
//! [`IO_POLL_INTERVAL`](super::core::IO_POLL_INTERVAL) polls at least, so never in the
//! per-poll path): while fewer than an eighth of the capacity is in use and the
//! capacity is above [`KEEP`] entries, it halves the capacity (one reallocation for
//! all the halvings). A trim copies at most an eighth of the old capacity, after at
//! least seven eighths of it were popped, so it costs O(1) per pop amortised; the gap
//! between the eighth and the half keeps a queue that swings between sizes from
//! resizing back and forth. A queue that never holds more than `KEEP` entries never
//! resizes, and memory follows the queue's recent length, not its all-time peak.
//!
//! Entries are [`QueuedId`]s (8 bytes).

use std::collections::VecDeque;

use super::task::QueuedId;

/// Capacity kept whatever the length: 32 KiB of entries.
const KEEP: usize = 4096;

/// A FIFO of ready tasks. See the module doc.
pub(crate) struct ReadyQueue {
    q: VecDeque<QueuedId>,
}

impl ReadyQueue {
    pub(crate) const fn new() -> ReadyQueue {
        ReadyQueue { q: VecDeque::new() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    #[inline]
    pub(crate) fn push_back(&mut self, q: QueuedId) {
        self.q.push_back(q);
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<QueuedId> {
        self.q.pop_front()
    }

    /// Gives capacity back (see the module doc).
    pub(crate) fn trim(&mut self) {
        let (len, mut cap) = (self.q.len(), self.q.capacity());
        if cap <= KEEP || len >= cap / 8 {
            return;
        }
        while cap > KEEP && len < cap / 8 {
            cap /= 2;
        }
        self.q.shrink_to(cap);
    }

    /// Drops every entry and the queue's memory.
    pub(crate) fn clear(&mut self) {
        self.q = VecDeque::new();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.q.len()
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.q.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::core::RuntimeId;
    use crate::runtime::task::TaskId;

    fn q(i: usize) -> QueuedId {
        TaskId::new(RuntimeId::next(), i, i as u64).queued()
    }

    #[test]
    #[cfg_attr(miri, ignore)] // safe code, and 10^5 to 10^6 queue operations
    fn a_drained_burst_gives_its_capacity_back() {
        let mut rq = ReadyQueue::new();
        assert_eq!(rq.pop_front(), None);
        let n = 100_000;
        for i in 0..n {
            rq.push_back(q(i));
        }
        let peak = rq.capacity();
        assert!(peak >= n);
        for i in 0..n - 1 {
            assert_eq!(rq.pop_front(), Some(q(i)), "entry {i}");
            if i % 61 == 0 {
                rq.trim(); // as often as the run loop parks, at least
            }
            let (len, cap) = (rq.len(), rq.capacity());
            assert!(
                cap >= len && (cap <= KEEP || len >= cap / 16),
                "{len} in {cap}"
            );
        }
        assert_eq!(rq.len(), 1);
        rq.trim();
        assert!(rq.capacity() <= KEEP, "{} of {peak} kept", rq.capacity());
        assert_eq!(rq.pop_front(), Some(q(n - 1)));
        assert!(rq.is_empty());
    }

    #[test]
    #[cfg_attr(miri, ignore)] // safe code, and 10^5 to 10^6 queue operations
    fn a_small_queue_never_resizes() {
        let mut rq = ReadyQueue::new();
        for i in 0..KEEP {
            rq.push_back(q(i));
        }
        let cap = rq.capacity();
        for round in 0..10 {
            for i in 0..KEEP {
                assert!(rq.pop_front().is_some(), "round {round}");
                rq.trim();
                assert_eq!(rq.capacity(), cap);
                rq.push_back(q(i));
            }
            while rq.pop_front().is_some() {
                rq.trim();
            }
            for i in 0..KEEP {
                rq.push_back(q(i));
            }
            assert_eq!(rq.capacity(), cap, "round {round}");
        }
        rq.clear();
        assert_eq!((rq.len(), rq.capacity()), (0, 0));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // safe code, and 10^5 to 10^6 queue operations
    fn bursts_against_a_vecdeque() {
        let mut rq = ReadyQueue::new();
        let mut model = VecDeque::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = 0;
        for round in 0..60 {
            // a burst of pushes (up to 5 × KEEP), then pops of a random share
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pushes = (x % (5 * KEEP as u64)) as usize;
            let pops = (x >> 32) as usize % (pushes + model.len() + 1);
            for _ in 0..pushes {
                rq.push_back(q(next));
                model.push_back(q(next));
                next += 1;
            }
            for i in 0..pops {
                assert_eq!(rq.pop_front(), model.pop_front(), "round {round}");
                if i % 61 == 0 {
                    rq.trim();
                }
            }
            assert_eq!(rq.len(), model.len());
            assert_eq!(rq.is_empty(), model.is_empty());
        }
        while let Some(m) = model.pop_front() {
            assert_eq!(rq.pop_front(), Some(m));
        }
        assert_eq!(rq.pop_front(), None);
    }
}
