//! The poller's due set: the children to poll in the current cycle of one
//! lane.
//!
//! A plain (non-atomic) list of `(word, bits)` pairs, owned by the poller.
//! `Header::refill` appends one entry per non-empty woken word; pushes append
//! the new children directly. Children are taken lowest bit first, entry by
//! entry, so a cycle can pause after any child (budget, output) and resume
//! exactly where it stopped. Its memory is kept between cycles, so a steady
//! state allocates nothing.

use crate::page::WORD_BITS;

#[derive(Debug, Default)]
pub(crate) struct DueSet {
    entries: Vec<(u32, u64)>,
    /// Entries before `next` are exhausted.
    next: usize,
}

impl DueSet {
    /// Adds the children `bits` of word `word` to the cycle.
    #[inline]
    pub(crate) fn push_word(&mut self, word: u32, bits: u64) {
        self.entries.push((word, bits));
    }

    /// Adds one child, merging with the last entry when it shares its word
    /// (consecutive pushes fill one entry).
    #[inline]
    pub(crate) fn push_index(&mut self, index: usize) {
        let word = (index / WORD_BITS) as u32;
        let bit = 1 << (index % WORD_BITS);
        let live = self.entries.len() > self.next;
        match self.entries.last_mut() {
            Some((last, bits)) if live && *last == word => *bits |= bit,
            _ => self.entries.push((word, bit)),
        }
    }

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
                return Some(*word as usize * WORD_BITS + bit);
            }
            self.next += 1;
        }
        self.entries.clear();
        self.next = 0;
        None
    }

    /// Puts back the child `pop` just returned, so the cycle resumes with it.
    #[inline]
    pub(crate) fn unpop(&mut self, index: usize) {
        let (word, bits) = &mut self.entries[self.next];
        debug_assert_eq!(*word as usize, index / WORD_BITS);
        *bits |= 1 << (index % WORD_BITS);
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
        due.push_index(0);
        due.push_index(1);
        due.push_index(64 * 9 + 5);
        let mut got = Vec::new();
        while let Some(i) = due.pop() {
            got.push(i);
        }
        assert_eq!(got, [3 * 64 + 1, 3 * 64 + 3, 0, 1, 9 * 64 + 5]);
        assert!(due.is_empty());
        assert_eq!(due.pop(), None);
    }

    #[test]
    fn pausing_mid_word_resumes_at_the_next_child() {
        let mut due = DueSet::default();
        due.push_word(0, 0b111);
        assert_eq!(due.pop(), Some(0));
        due.push_index(64);
        assert_eq!(due.pop(), Some(1));
        due.unpop(1);
        assert_eq!(due.pop(), Some(1));
        assert_eq!(due.pop(), Some(2));
        assert_eq!(due.pop(), Some(64));
        assert_eq!(due.pop(), None);
    }
}
