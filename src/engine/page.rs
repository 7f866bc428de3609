//! Index arithmetic for the address-stable pages shared by the slot storage
//! and the waker records.
//!
//! Page `p` holds `FIRST_PAGE_LEN << p` slots, so the pages together form one
//! index space that doubles as it grows and never moves: growing allocates a
//! new page and leaves every existing one where it is. Mapping an index to
//! its page is one `leading_zeros`.

/// Number of slots in page 0; a multiple of the bitset word size so that a
/// word of woken bits never straddles two pages.
pub(crate) const FIRST_PAGE_SHIFT: u32 = 6;
pub(crate) const FIRST_PAGE_LEN: usize = 1 << FIRST_PAGE_SHIFT;

/// A word of the woken bitsets: pointer-sized, so targets without 64-bit
/// atomics (32-bit ones) use 32-bit words and 64-bit targets 64-bit words.
pub(crate) type Word = usize;

/// Bits per word of the woken bitsets.
pub(crate) const WORD_BITS: usize = Word::BITS as usize;

/// Pages allowed; together they hold `FIRST_PAGE_LEN * (2^MAX_PAGES - 1)`
/// slots, which keeps every index below `u32::MAX` (indices are stored as
/// `u32` in the due sets).
pub(crate) const MAX_PAGES: usize = 25;

/// Largest number of children a set can hold at once.
pub(crate) const MAX_CHILDREN: usize = FIRST_PAGE_LEN * ((1 << MAX_PAGES) - 1);

// A word of woken bits never straddles two pages, and a lane's `tops` word
// has one bit per page, with 32-bit words too.
const _: () = assert!(FIRST_PAGE_LEN % WORD_BITS == 0);
const _: () = assert!(MAX_PAGES <= WORD_BITS);

/// Number of slots in page `page`.
#[inline]
pub(crate) const fn page_len(page: usize) -> usize {
    FIRST_PAGE_LEN << page
}

/// First index held by page `page`.
#[inline]
pub(crate) const fn page_base(page: usize) -> usize {
    ((1 << page) - 1) << FIRST_PAGE_SHIFT
}

/// `(page, offset within the page)` of `index`.
#[inline]
pub(crate) const fn locate(index: usize) -> (usize, usize) {
    let units = (index >> FIRST_PAGE_SHIFT) + 1;
    let page = (usize::BITS - 1 - units.leading_zeros()) as usize;
    (page, index - page_base(page))
}

/// Number of words covering page `page`.
#[inline]
pub(crate) const fn page_words(page: usize) -> usize {
    page_len(page) / WORD_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_round_trips_across_page_boundaries() {
        for page in 0..12 {
            let base = page_base(page);
            assert_eq!(locate(base), (page, 0));
            assert_eq!(
                locate(base + page_len(page) - 1),
                (page, page_len(page) - 1)
            );
            assert_eq!(page_base(page + 1), base + page_len(page));
        }
        assert_eq!(locate(MAX_CHILDREN - 1).0, MAX_PAGES - 1);
        assert!(u32::try_from(MAX_CHILDREN).is_ok());
    }
}
