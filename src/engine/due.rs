//! The poller's due set: the children to poll in the current cycle of one
//! lane.
//!
//! A plain (non-atomic) list of `(word, bits)` pairs, owned by the poller.
//! `Header::refill` appends one entry per non-empty woken word; pushes append
//! the new children directly. Children are taken lowest bit first, entry by
//! entry, so a cycle can pause after any child (budget, output) and resume
//! exactly where it stopped. Its memory is kept between cycles, so a steady
//! state allocates nothing.

use alloc::vec::Vec;

use crate::engine::page::{Word, WORD_BITS};

#[derive(Debug, Default)]
pub(crate) struct DueSet {
    entries: Vec<(u32, Word)>,
    /// Entries before `next` are exhausted.
    next: usize,
    /// Entry of the child `pop` returned last, for `unpop`.
    popped: usize,
}

impl DueSet {
    /// Drops exhausted entries (keeping the memory) before new ones come.
    #[inline]
    fn compact(&mut self) {
        if self.next == self.entries.len() && self.next != 0 {
            self.entries.clear();
            self.next = 0;
        }
    }

    /// Adds the children `bits` of word `word` to the cycle.
    #[inline]
    pub(crate) fn push_word(&mut self, word: u32, bits: Word) {
        self.compact();
        self.entries.push((word, bits));
    }

    /// Whether the cycle has no child left.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.next == self.entries.len()
    }

    /// Takes the next child of the cycle, lowest index of the oldest entry
    /// first.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<usize> {
        while let Some((word, bits)) = self.entries.get_mut(self.next) {
            if *bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                *bits &= *bits - 1;
                let index = *word as usize * WORD_BITS + bit;
                self.popped = self.next;
                if *bits == 0 {
                    self.skip_exhausted();
                }
                return Some(index);
            }
            self.next += 1;
        }
        None
    }

    /// Moves `next` past empty entries, so `is_empty` is exact.
    #[inline]
    fn skip_exhausted(&mut self) {
        while self.entries.get(self.next).is_some_and(|e| e.1 == 0) {
            self.next += 1;
        }
    }

    /// Puts back the child `pop` just returned, so the cycle resumes with it.
    #[inline]
    pub(crate) fn unpop(&mut self, index: usize) {
        let (word, bits) = &mut self.entries[self.popped];
        debug_assert_eq!(*word as usize, index / WORD_BITS);
        *bits |= 1 << (index % WORD_BITS);
        self.next = self.next.min(self.popped);
    }

    /// Removes a child that is no longer there (cancelled) from the rest of
    /// the cycle. Linear in the cycle's entries; cancellation is rare next
    /// to polling.
    pub(crate) fn remove(&mut self, index: usize) {
        let word = (index / WORD_BITS) as u32;
        let bit: Word = 1 << (index % WORD_BITS);
        for (w, bits) in &mut self.entries[self.next..] {
            if *w == word {
                *bits &= !bit;
            }
        }
        self.skip_exhausted();
    }

    /// Forgets the rest of the cycle.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_each_child_once_in_entry_order() {
        let mut due = DueSet::default();
        due.push_word(3, 0b1010);
        due.push_word(0, 0b11);
        due.push_word(9, 1 << 5);
        let mut got = Vec::new();
        while let Some(i) = due.pop() {
            got.push(i);
        }
        let w = WORD_BITS;
        assert_eq!(got, [3 * w + 1, 3 * w + 3, 0, 1, 9 * w + 5]);
        assert!(due.is_empty());
        assert_eq!(due.pop(), None);
    }

    #[test]
    fn is_empty_as_soon_as_the_last_child_is_taken() {
        let mut due = DueSet::default();
        due.push_word(0, 0b1);
        assert!(!due.is_empty());
        assert_eq!(due.pop(), Some(0));
        assert!(due.is_empty());
        due.unpop(0);
        assert!(!due.is_empty());
        assert_eq!(due.pop(), Some(0));
        due.push_word(1, 0b1);
        assert_eq!(due.pop(), Some(WORD_BITS));
        assert!(due.is_empty());
    }

    #[test]
    fn pausing_mid_word_resumes_at_the_next_child() {
        let mut due = DueSet::default();
        due.push_word(0, 0b111);
        assert_eq!(due.pop(), Some(0));
        due.push_word(1, 0b1);
        assert_eq!(due.pop(), Some(1));
        due.unpop(1);
        due.remove(2);
        assert_eq!(due.pop(), Some(1));
        assert_eq!(due.pop(), Some(WORD_BITS));
        assert_eq!(due.pop(), None);
    }
}
