//! The stash: outputs that children produced while the set was driven by
//! `progress_while` (the loop body still running), kept in completion order
//! until `poll_next` hands them out (rule K1 in ARCHITECTURE.md).
//!
//! The set types have no `Fut: Future` bound (futures-util's
//! `FuturesUnordered<Fut>` has none), so `Core<T>` cannot name the output
//! type in a field. The queue is therefore type-erased: a leaked
//! `Box<VecDeque<(Key, R)>>` behind a `NonNull<()>`, with a small table of
//! functions, made when the queue was, that clear and free it as the type
//! it really is. The typed accessors are `unsafe`: their caller promises
//! that `R` is the type the queue was made with, which holds because only a
//! set's own code calls them, with one `R` fixed by the set's `T`.
//!
//! Next to the queue, the *parked* streams: a stream whose item is in the
//! stash is not polled again until that item is handed out, so the stash
//! holds at most one item per stream. `parked[index]` is the generation of
//! the parked stream in slot `index` plus one (0: none); a stale entry (the
//! stream was cancelled, its slot reused) names a generation no live child
//! has, so it matches nothing.
//!
//! Nothing here is touched through `&self` but `len`, a plain count, so
//! sharing the set between threads never shares an `R` (no `R: Sync`
//! needed); `push` requires `R: Send`, so the set's `Send` (when `T: Send`)
//! stays sound.

use core::alloc::Layout;
use core::ptr::NonNull;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::sets::key::Key;

/// The outputs kept for the set's next `poll_next` calls, and the streams
/// parked until theirs is handed out.
pub(crate) struct Stash {
    /// Outputs in the queue. Kept here, not read through the pointer, so an
    /// empty stash costs `poll_next` one load and one branch.
    len: usize,
    /// The erased `Box<VecDeque<(Key, R)>>` and the functions that know its
    /// `R`; `None` until the first output is kept. The queue is kept (with
    /// its capacity) once made, so keeping outputs allocates nothing in
    /// steady state.
    queue: Option<(NonNull<()>, &'static Erased)>,
    /// Per slot index: generation + 1 of the stream parked there, or 0.
    parked: Vec<u32>,
}

/// What is known about the erased queue's type.
struct Erased {
    /// Drops every output, keeping the queue's memory.
    clear: unsafe fn(NonNull<()>),
    /// Drops the outputs and frees the queue.
    free: unsafe fn(NonNull<()>),
    /// `Layout` of `(Key, R)`, to catch a wrong `R` in debug builds.
    entry: Layout,
}

/// The queue of outputs of type `R`.
type Queue<R> = VecDeque<(Key, R)>;

/// The `Erased` table of `Queue<R>`, one `'static` per `R`.
struct ErasedOf<R>(core::marker::PhantomData<R>);

impl<R> ErasedOf<R> {
    const TABLE: Erased = Erased {
        clear: clear_queue::<R>,
        free: free_queue::<R>,
        entry: Layout::new::<(Key, R)>(),
    };
}

/// # Safety
///
/// `queue` came from `Box::<Queue<R>>::into_raw` and is not freed.
unsafe fn clear_queue<R>(queue: NonNull<()>) {
    // SAFETY: the caller's promise; `&mut` because the stash that owns the
    // queue is borrowed mutably by our caller.
    unsafe { queue.cast::<Queue<R>>().as_mut() }.clear();
}

/// # Safety
///
/// `queue` came from `Box::<Queue<R>>::into_raw` and is never used again.
unsafe fn free_queue<R>(queue: NonNull<()>) {
    // SAFETY: the caller's promise: we own the box, and this is its one free.
    drop(unsafe { Box::from_raw(queue.cast::<Queue<R>>().as_ptr()) });
}

impl Stash {
    pub(crate) const fn new() -> Self {
        Self {
            len: 0,
            queue: None,
            parked: Vec::new(),
        }
    }

    /// Outputs kept, not handed out yet.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The typed queue, made on first use.
    ///
    /// # Safety
    ///
    /// `R` is the type of every output this stash has kept or will keep
    /// (rule K1): the queue, if made, was made as a `Queue<R>`.
    unsafe fn queue<R>(&mut self) -> &mut Queue<R> {
        let (queue, erased) = *self.queue.get_or_insert_with(|| {
            let queue = NonNull::from(Box::leak(Box::new(Queue::<R>::new())));
            (queue.cast(), &ErasedOf::<R>::TABLE)
        });
        debug_assert_eq!(
            erased.entry,
            Layout::new::<(Key, R)>(),
            "stash of another type"
        );
        // SAFETY: made as a `Queue<R>` (the caller's promise, K1), owned by
        // this stash, which we borrow mutably.
        unsafe { queue.cast::<Queue<R>>().as_mut() }
    }

    /// Keeps `output` of the child `key` names, after every output kept
    /// before it.
    ///
    /// # Safety
    ///
    /// As [`queue`](Self::queue): `R` is this stash's one output type.
    #[inline]
    pub(crate) unsafe fn push<R: Send>(&mut self, key: Key, output: R) {
        // SAFETY: the caller's promise.
        unsafe { self.queue::<R>() }.push_back((key, output));
        self.len += 1;
    }

    /// The oldest kept output, if any.
    ///
    /// # Safety
    ///
    /// As [`queue`](Self::queue): `R` is this stash's one output type.
    #[inline]
    pub(crate) unsafe fn pop<R>(&mut self) -> Option<(Key, R)> {
        if self.len == 0 {
            return None;
        }
        // SAFETY: the caller's promise.
        let next = unsafe { self.queue::<R>() }.pop_front();
        self.len -= usize::from(next.is_some());
        next
    }

    /// Drops every kept output (each once, even if one's `Drop` panics:
    /// `VecDeque::clear` is panic-safe) and unparks every stream. The queue
    /// keeps its memory.
    pub(crate) fn clear(&mut self) {
        self.parked.clear();
        self.len = 0;
        if let Some((queue, erased)) = self.queue {
            // SAFETY: `erased` is the table of the type the queue was made
            // with (`queue`), and the queue is ours and live.
            unsafe { (erased.clear)(queue) };
        }
    }

    /// Parks the stream in slot `index`, of generation `generation`: its
    /// item is being kept.
    pub(crate) fn park(&mut self, index: usize, generation: u32) {
        if self.parked.len() <= index {
            self.parked.resize(index + 1, 0);
        }
        self.parked[index] = generation + 1;
    }

    /// Whether the child in slot `index`, of generation `generation`, is a
    /// parked stream.
    #[inline]
    pub(crate) fn is_parked(&self, index: usize, generation: u32) -> bool {
        self.parked.get(index) == Some(&(generation + 1))
    }

    /// Unparks the stream `key` names, whose item is being handed out;
    /// whether it was parked (it may have been cancelled, and its slot
    /// reused, since).
    #[inline]
    pub(crate) fn unpark(&mut self, key: Key) -> bool {
        match self.parked.get_mut(key.index()) {
            Some(entry) if *entry == key.generation + 1 => {
                *entry = 0;
                true
            }
            _ => false,
        }
    }
}

impl Drop for Stash {
    fn drop(&mut self) {
        if let Some((queue, erased)) = self.queue.take() {
            // SAFETY: the table of the queue's own type; taken out, so this
            // is its one free.
            unsafe { (erased.free)(queue) };
        }
    }
}
