//! The atomic woken bitsets: how a wake is recorded and how the poller takes
//! a cycle's worth of wakes in one sweep.
//!
//! Three levels per lane, all `AtomicWord` (pointer-sized: `WORD_BITS` is 64
//! or 32):
//!
//! ```text
//! header.tops[lane]        bit p  : page p may hold woken bits
//! page.summary[lane][s]    bit b  : word WORD_BITS*s+b of the page may be non-zero
//! page.woken[lane][w]      bit o  : the child at offset WORD_BITS*w+o was woken
//! ```
//!
//! Rules (cited as W1..W3 in the code):
//!
//! - W1: a child's woken bit is set only by `mark` (its waker, or a push) and
//!   cleared only by the poller (`refill`, `unmark`, `discard`).
//! - W2: `mark` sets the word bit, then the summary bit only if the word was
//!   zero, then the top bit only if the summary word was zero, and wakes the
//!   parent only if the top word was zero. So every set bit has its parent
//!   bits set, or a `mark` in progress that will set them.
//! - W3: `refill` swaps each level to zero top-down and only follows bits it
//!   took. A bit set after its word was swapped is found by the next refill,
//!   because by W2 its `mark` sets the parent bits again.
//!
//! All bit updates are read-modify-writes, which always see the latest value
//! of their word, so no bit is lost whatever the orderings. The orderings
//! only publish data: see each operation.
//!
//! This module has no `unsafe`.

use crate::engine::due::DueSet;
use crate::engine::header::{Header, RecordPage};
use crate::engine::loom::Ordering::*;
use crate::engine::page::{page_base, page_words, Word, WORD_BITS};

/// Outcome of [`RecordPage::mark`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkOutcome {
    /// The child was already queued, or a wake of a sibling in this page is
    /// already propagating: nothing more to do.
    AlreadyQueued,
    /// The lane went from idle to woken: the parent task must be woken.
    NotifyParent,
}

impl RecordPage {
    /// Marks the child at `offset` woken in `lane` (W2).
    #[inline]
    pub(crate) fn mark(&self, header: &Header, lane: usize, offset: usize) -> MarkOutcome {
        self.mark_word(header, lane, offset / WORD_BITS, 1 << (offset % WORD_BITS))
    }

    /// Marks the children `bits` of word `word` woken in `lane` at once
    /// (W2): one read-modify-write for up to `WORD_BITS` children.
    #[inline]
    pub(crate) fn mark_word(
        &self,
        header: &Header,
        lane: usize,
        word: usize,
        bits: Word,
    ) -> MarkOutcome {
        let words = self.words;
        // Release: pairs with the Acquire swap in `refill`, so what the
        // waking thread wrote before `wake()` is visible to the child's next
        // poll.
        let prev = self.woken[lane * words + word].fetch_or(bits, Release);
        if prev != 0 {
            return MarkOutcome::AlreadyQueued;
        }
        self.mark_summary(header, lane, words, word)
    }

    fn mark_summary(&self, header: &Header, lane: usize, words: usize, word: usize) -> MarkOutcome {
        let summary_words = words.div_ceil(WORD_BITS);
        // Release: keeps the word bit above ordered before this bit for a
        // poller that Acquires the summary (W3).
        let prev = self.summary[lane * summary_words + word / WORD_BITS]
            .fetch_or(1 << (word % WORD_BITS), Release);
        if prev != 0 {
            return MarkOutcome::AlreadyQueued;
        }
        // Release: as above, one level up.
        let prev = header.tops[lane].fetch_or(1 << self.number, Release);
        if prev != 0 {
            MarkOutcome::AlreadyQueued
        } else {
            MarkOutcome::NotifyParent
        }
    }

    /// Clears a stale woken bit of a child that is being removed, so the
    /// slot's next occupant is not polled for it (W1). Parent bits may stay
    /// set; `refill` skips empty words.
    #[inline]
    pub(crate) fn unmark(&self, lane: usize, offset: usize) {
        let word = &self.woken[lane * self.words + offset / WORD_BITS];
        let bit = 1 << (offset % WORD_BITS);
        // Relaxed: only the poller clears bits and it is the caller; a cheap
        // load avoids the read-modify-write in the common case.
        if word.load(Relaxed) & bit != 0 {
            word.fetch_and(!bit, Relaxed);
        }
    }
}

/// Gathers the marks of many children (the pushes one `sync` adopts) into
/// one [`RecordPage::mark_word`] per run of children in the same page, lane
/// and word.
pub(crate) struct MarkBatch<'h> {
    header: &'h Header,
    /// (page, lane, word, bits) being gathered.
    run: Option<(&'h RecordPage, usize, usize, Word)>,
    outcome: MarkOutcome,
}

impl<'h> MarkBatch<'h> {
    #[inline]
    pub(crate) fn new(header: &'h Header) -> Self {
        Self {
            header,
            run: None,
            outcome: MarkOutcome::AlreadyQueued,
        }
    }

    /// Adds the children `bits` of word `word` of `page`, in `lane`.
    #[inline]
    pub(crate) fn add(&mut self, page: &'h RecordPage, lane: usize, word: usize, bits: Word) {
        if let Some((p, l, w, b)) = &mut self.run {
            if core::ptr::eq(*p, page) && (*l, *w) == (lane, word) {
                *b |= bits;
                return;
            }
        }
        if let Some(done) = self.run.replace((page, lane, word, bits)) {
            self.flush(done);
        }
    }

    #[inline]
    fn flush(&mut self, (page, lane, word, bits): (&RecordPage, usize, usize, Word)) {
        if page.mark_word(self.header, lane, word, bits) == MarkOutcome::NotifyParent {
            self.outcome = MarkOutcome::NotifyParent;
        }
    }

    /// Marks what is still gathered; `NotifyParent` if any lane went from
    /// idle to woken.
    #[inline]
    pub(crate) fn finish(mut self) -> MarkOutcome {
        if let Some(run) = self.run.take() {
            self.flush(run);
        }
        self.outcome
    }
}

impl Header {
    /// Whether any child of `lane` may have been woken since the last refill.
    #[inline]
    pub(crate) fn has_woken(&self, lane: usize) -> bool {
        // Relaxed: a hint for the poller. A `mark` it misses wakes the parent
        // waker registered before this load (rules P1, R1), and the poll
        // that wake causes happens after the mark.
        self.tops[lane].load(Relaxed) != 0
    }

    /// Moves every woken bit of `lane` into `due` and clears it: one swap per
    /// non-empty word, found through the summaries (W3).
    pub(crate) fn refill(&self, lane: usize, due: &mut DueSet) {
        // Acquire: pairs with the Release `fetch_or`s in `mark`.
        let mut pages = self.tops[lane].swap(0, Acquire);
        while pages != 0 {
            let number = pages.trailing_zeros() as usize;
            pages &= pages - 1;
            let Some(page) = self.page(number) else {
                continue;
            };
            let words = page_words(number);
            let summary_words = words.div_ceil(WORD_BITS);
            let first_word = page_base(number) / WORD_BITS;
            let summary = &page.summary[lane * summary_words..(lane + 1) * summary_words];
            for (s, summary_word) in summary.iter().enumerate() {
                // Relaxed: skips an empty word without a write; a bit set
                // after this load propagates to `tops` again (W2).
                if summary_word.load(Relaxed) == 0 {
                    continue;
                }
                // Acquire: pairs with `mark_summary`'s Release.
                let mut bits = summary_word.swap(0, Acquire);
                while bits != 0 {
                    let word = s * WORD_BITS + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    // Acquire: pairs with `mark`'s Release (the wake's data).
                    let woken = page.woken[lane * words + word].swap(0, Acquire);
                    if woken != 0 {
                        due.push_word((first_word + word) as u32, woken);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;
    use crate::engine::page::{locate, page_len};

    /// Marks across word, summary and page boundaries come out of one
    /// refill, each once, in index order. With 32-bit words page 0 is two
    /// words; page 7 has more than `WORD_BITS` words, so two or more
    /// summary words, with either word size.
    #[test]
    fn refill_finds_marks_across_word_and_page_boundaries() {
        let this = Header::new();
        // SAFETY: `new` returned a live header whose one reference we hold
        // until `ref_dec` below.
        let header = unsafe { this.as_ref() };
        let last = |page| page_base(page) + page_len(page) - 1;
        let indices = [0, 31, 32, 63, page_base(1) + 1, last(1), last(2), last(7)];
        let mut outcomes = Vec::new();
        for &index in &indices {
            let (number, offset) = locate(index);
            let page = header.page_or_alloc(this, number);
            outcomes.push(page.mark(header, 0, offset));
            assert_eq!(page.mark(header, 0, offset), MarkOutcome::AlreadyQueued);
        }
        assert_eq!(outcomes[0], MarkOutcome::NotifyParent);
        assert!(outcomes[1..]
            .iter()
            .all(|&o| o == MarkOutcome::AlreadyQueued));
        assert!(header.has_woken(0));
        let mut due = DueSet::default();
        header.refill(0, &mut due);
        assert!(!header.has_woken(0));
        let mut got = Vec::new();
        while let Some(index) = due.pop() {
            got.push(index);
        }
        assert_eq!(got, indices);
        // SAFETY: our reference, given up; `header` is not used again.
        unsafe { Header::ref_dec(this) };
    }
}
