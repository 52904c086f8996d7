//! A slab that grows by pages: the runtime's store for per-task and per-waiter
//! entries (the task slots, the wait lists of the sync primitives).
//!
//! It behaves like the `slab` crate's `Slab` (stable `usize` keys, vacant entries
//! reused last-freed first, O(1) insert and remove, iteration in key order), but its
//! storage is a list of pages of at most [`PAGE`] entries instead of one vector. One
//! vector doubles when it is full, so its spare capacity depends on where the
//! entry count happens to fall between two powers of two: 100,000 tasks live in a
//! vector of 131,072 slots (31 % more than used, benchmark B9), 65,537 in one of
//! 131,072 (twice). Pages bound the spare room to half a page (each page is a vector
//! that doubles up to [`PAGE`] entries), and growing never copies more than one page.
//! A small slab (a mutex with three waiters) is one small page, as before.
//!
//! A key is `page * PAGE + index`; a lookup is two bounds-checked indexings. Pages are
//! never given back (as a `Slab` keeps its capacity): a slab that once held 100,000
//! entries keeps their room for the next burst.

use std::fmt;
use std::ops::{Index, IndexMut};

/// Entries per page (a power of two: a key's page is `key >> PAGE_SHIFT`). 16,384:
/// the sets of 10,000 tasks of benchmarks B1, B5 and B10 stay in the first page,
/// whose lookup is inlined; beyond it, at most half a page is spare.
pub(crate) const PAGE: usize = 1 << PAGE_SHIFT;
const PAGE_SHIFT: u32 = 14;
const MASK: usize = PAGE - 1;

/// One place of the slab: a value, or a link in the list of vacant places.
enum Entry<T> {
    /// Vacant; the next vacant key (`end` of the slab if it is the last one). `u32`,
    /// so that a `T` with a niche (a pointer) needs no tag word beside it.
    Vacant(u32),
    Occupied(T),
}

/// See the module doc.
pub(crate) struct PagedSlab<T> {
    /// Keys `0..PAGE`: inline, so a small slab (every wait list, most task sets) is
    /// one vector and a lookup in it one bounds check, as in a plain slab.
    first: Vec<Entry<T>>,
    /// Keys from `PAGE` on: page `p + 1` is `more[p]`.
    more: Vec<Vec<Entry<T>>>,
    /// The first vacant key; `end` when no place is vacant.
    free: u32,
    /// How many places exist (occupied or vacant): the key the next new place gets.
    end: u32,
    len: u32,
}

impl<T> Default for PagedSlab<T> {
    fn default() -> Self {
        PagedSlab::new()
    }
}

impl<T> PagedSlab<T> {
    /// An empty slab; allocates nothing until the first insert.
    pub(crate) const fn new() -> PagedSlab<T> {
        PagedSlab {
            first: Vec::new(),
            more: Vec::new(),
            free: 0,
            end: 0,
            len: 0,
        }
    }

    /// How many values it holds.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// The key the next [`insert`](Self::insert) returns.
    pub(crate) fn vacant_key(&self) -> usize {
        self.free as usize
    }

    /// Stores `value` and returns its key.
    ///
    /// # Panics
    ///
    /// If the slab would hold more than `u32::MAX` places (keys are 32-bit inside).
    pub(crate) fn insert(&mut self, value: T) -> usize {
        let key = self.free as usize;
        if self.free == self.end {
            assert!(
                self.end < u32::MAX,
                "scope_runtime: more than 4 billion entries in one slab"
            );
            if key < PAGE {
                self.first.push(Entry::Occupied(value));
            } else {
                let more = &mut self.more;
                let p = (key >> PAGE_SHIFT) - 1;
                if p == more.len() {
                    // The first page grows from nothing; a later one is only made
                    // when the slab is big anyway, so it starts at an eighth of a
                    // page: at most three copies to fill it, at most half a page
                    // spare.
                    more.push(Vec::with_capacity(PAGE / 8));
                }
                more[p].push(Entry::Occupied(value));
            }
            self.end += 1;
            self.free = self.end;
        } else {
            let place = self
                .entry_mut(key)
                .expect("the vacant list holds live keys");
            match std::mem::replace(place, Entry::Occupied(value)) {
                Entry::Vacant(next) => self.free = next,
                Entry::Occupied(_) => unreachable!("the vacant list holds an occupied key"),
            }
        }
        self.len += 1;
        key
    }

    // The first page's lookup is inlined where the slab is used; a later page's is
    // a call (only big slabs have one), which keeps the inlined code as small as a
    // plain slab's (benchmark B3: a channel's wait list is used at every message).
    #[inline]
    fn entry(&self, key: usize) -> Option<&Entry<T>> {
        if key < PAGE {
            self.first.get(key)
        } else {
            self.entry_further(key)
        }
    }

    #[inline(never)]
    fn entry_further(&self, key: usize) -> Option<&Entry<T>> {
        let more = &self.more;
        more.get((key >> PAGE_SHIFT) - 1)?.get(key & MASK)
    }

    #[inline]
    fn entry_mut(&mut self, key: usize) -> Option<&mut Entry<T>> {
        if key < PAGE {
            self.first.get_mut(key)
        } else {
            self.entry_further_mut(key)
        }
    }

    #[inline(never)]
    fn entry_further_mut(&mut self, key: usize) -> Option<&mut Entry<T>> {
        let more = &mut self.more;
        let page = more.get_mut((key >> PAGE_SHIFT) - 1)?;
        page.get_mut(key & MASK)
    }

    /// The pages in key order, with the key of each one's first place.
    fn pages(&self) -> impl Iterator<Item = (usize, &Vec<Entry<T>>)> {
        std::iter::once(&self.first)
            .chain(&self.more)
            .enumerate()
            .map(|(p, page)| (p << PAGE_SHIFT, page))
    }

    /// The value at `key`, if that place is occupied.
    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self.entry(key)? {
            Entry::Occupied(v) => Some(v),
            Entry::Vacant(_) => None,
        }
    }

    /// The value at `key`, if that place is occupied.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.entry_mut(key)? {
            Entry::Occupied(v) => Some(v),
            Entry::Vacant(_) => None,
        }
    }

    /// Takes the value at `key` out, if there is one; its place is reused first.
    pub(crate) fn try_remove(&mut self, key: usize) -> Option<T> {
        self.remove_if(key, |_| true)
    }

    /// Takes the value at `key` out if there is one and `pred` accepts it (one lookup
    /// for the check and the removal).
    pub(crate) fn remove_if(&mut self, key: usize, pred: impl FnOnce(&T) -> bool) -> Option<T> {
        let free = self.free;
        let place = self.entry_mut(key)?;
        match place {
            Entry::Occupied(v) if pred(v) => {}
            _ => return None,
        }
        let Entry::Occupied(v) = std::mem::replace(place, Entry::Vacant(free)) else {
            unreachable!("checked occupied just above")
        };
        self.free = key as u32; // an existing place: below `end`, a `u32`
        self.len -= 1;
        Some(v)
    }

    /// Takes the value at `key` out.
    ///
    /// # Panics
    ///
    /// If `key` holds no value (a bug of the caller's bookkeeping).
    pub(crate) fn remove(&mut self, key: usize) -> T {
        self.try_remove(key).unwrap_or_else(|| no_value())
    }

    /// The values with their keys, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.pages().flat_map(|(start, page)| {
            page.iter().enumerate().filter_map(move |(i, e)| match e {
                Entry::Occupied(v) => Some((start + i, v)),
                Entry::Vacant(_) => None,
            })
        })
    }

    /// The values with their keys, in key order.
    #[cfg(test)]
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> {
        std::iter::once(&mut self.first)
            .chain(&mut self.more)
            .enumerate()
            .flat_map(|(p, page)| {
                page.iter_mut()
                    .enumerate()
                    .filter_map(move |(i, e)| match e {
                        Entry::Occupied(v) => Some(((p << PAGE_SHIFT) + i, v)),
                        Entry::Vacant(_) => None,
                    })
            })
    }

    /// How many places the pages have room for (for the tests and `resources`).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.pages().map(|(_, p)| p.capacity()).sum()
    }
}

/// The size of one place holding a `T` (for the size tests of the slab's users).
#[cfg(test)]
pub(crate) const fn place_size<T>() -> usize {
    size_of::<Entry<T>>()
}

/// The panic of a lookup of a key without a value: a bug in the caller's
/// bookkeeping. Out of line and without `#[track_caller]`, so the lookups that are
/// inlined everywhere carry no panic formatting of their own.
#[cold]
#[inline(never)]
fn no_value() -> ! {
    panic!("scope_runtime: no value at this slab key")
}

impl<T> Index<usize> for PagedSlab<T> {
    type Output = T;

    fn index(&self, key: usize) -> &T {
        self.get(key).unwrap_or_else(|| no_value())
    }
}

impl<T> IndexMut<usize> for PagedSlab<T> {
    fn index_mut(&mut self, key: usize) -> &mut T {
        self.get_mut(key).unwrap_or_else(|| no_value())
    }
}

impl<T: fmt::Debug> fmt::Debug for PagedSlab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    //! Against `slab::Slab` as the model: the same operations give the same keys and
    //! values; plus what pages are for (spare room bounded by half a page).

    use super::{PAGE, PagedSlab};

    /// A small deterministic generator (xorshift), so the sequences repeat.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    #[test]
    fn behaves_like_slab_under_random_inserts_and_removes() {
        let ops = if cfg!(miri) { 2_000 } else { 200_000 };
        let mut next = rng(7);
        let mut ours = PagedSlab::new();
        let mut model = slab::Slab::new();
        let mut keys = Vec::new();
        for n in 0..ops {
            // Grow for the first half, shrink for the second: pages fill and empty.
            let insert = next() % 100 < if n < ops / 2 { 70 } else { 30 };
            if insert || keys.is_empty() {
                assert_eq!(ours.vacant_key(), model.vacant_key());
                let k = ours.insert(n);
                assert_eq!(k, model.insert(n));
                keys.push(k);
            } else {
                let k = keys.swap_remove(next() as usize % keys.len());
                assert_eq!(ours.remove(k), model.remove(k));
                assert_eq!(ours.try_remove(k), None, "a removed key holds nothing");
            }
            assert_eq!(ours.len(), model.len());
        }
        for (k, v) in model.iter() {
            assert_eq!(ours.get(k), Some(v));
        }
        assert!(
            ours.iter()
                .map(|(k, v)| (k, *v))
                .eq(model.iter().map(|(k, v)| (k, *v)))
        );
        for (_, v) in ours.iter_mut() {
            *v += 1;
        }
        assert!(ours.iter().all(|(k, v)| *v == model[k] + 1));
    }

    #[test]
    fn a_key_past_the_end_or_vacant_gives_none() {
        let mut s = PagedSlab::new();
        assert_eq!(s.get(0), None);
        assert_eq!(s.get(usize::MAX), None);
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), "a");
        assert_eq!(s.get(a), None);
        assert_eq!(s.get_mut(a), None);
        assert_eq!(s.try_remove(a), None);
        assert_eq!(s.remove_if(b, |v| *v == "x"), None, "refused: kept");
        assert_eq!(s[b], "b");
        assert_eq!(s.insert("c"), a, "the freed place is reused");
    }

    #[test]
    #[should_panic(expected = "no value at this slab key")]
    fn indexing_a_vacant_key_panics_with_a_message() {
        let s: PagedSlab<u8> = PagedSlab::new();
        let _ = s[3];
    }

    #[test]
    #[cfg_attr(miri, ignore)] // 10^5 entries: slow under Miri, and safe code
    fn spare_room_is_bounded_by_a_page() {
        // Where one doubling vector would have 31 % spare room (100,000 in 131,072).
        let n = 100_000;
        let mut s = PagedSlab::new();
        for i in 0..n {
            s.insert(i);
        }
        assert_eq!(s.len(), n);
        let spare = s.capacity() - n;
        assert!(spare <= PAGE / 2, "{spare} spare places for {n} values");
        // Keys are dense and stable across page boundaries.
        assert!(s.iter().all(|(k, v)| k == *v));
        assert_eq!(s[PAGE], PAGE);
        assert_eq!(s[PAGE - 1], PAGE - 1);
    }

    #[test]
    fn a_small_slab_is_one_small_page() {
        let mut s = PagedSlab::new();
        for i in 0..3u64 {
            s.insert(i);
        }
        assert!(s.capacity() < 16, "capacity {}", s.capacity());
    }

    #[test]
    fn the_slab_itself_is_eight_words() {
        assert_eq!(size_of::<PagedSlab<u64>>(), 64);
    }

    #[test]
    fn a_pointer_valued_entry_needs_no_tag_word() {
        // The vacant link fits beside the pointer's niche (the task slot, 16 bytes).
        assert_eq!(size_of::<super::Entry<(Box<u8>, u32, u32)>>(), 16);
        assert_eq!(size_of::<super::Entry<std::task::Waker>>(), 16);
    }
}
