//! The injection queue: children pushed through a `PushHandle` from other
//! tasks and threads, while the set's owner may be polling it.
//!
//! A handle cannot claim a slot: the owner's adoption (`Core::sync`) moves
//! `recycled` and `fresh` under `&mut`, which is what makes a claim an index.
//! So a handle allocates a node and pushes it onto a lock-free stack in the
//! header; the owner takes the whole stack at its next `sync` or poll and
//! pushes each child the ordinary way, oldest first (rule I1 in
//! `ARCHITECTURE.md`). No lock exists, so none is held while a child is
//! polled. The set's drop closes the stack: later pushes get their child
//! back, and the nodes it finds are dropped there.
//!
//! The header is not generic, so each node carries the function that drops
//! it; only the owner, which knows the child type, reads a child out.

use alloc::boxed::Box;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::engine::lanes::Priority;
use crate::engine::loom::{AtomicPtr, AtomicUsize, Ordering::*};

/// The type-independent head of a node.
#[repr(C)]
pub(crate) struct Link {
    /// The node pushed before this one (null at the bottom of the stack).
    next: *mut Link,
    /// Drops the whole node (`drop_node::<T>` for its child type).
    drop: unsafe fn(*mut Link),
}

/// One pushed child. `link` comes first (`repr(C)`), so a pointer to the
/// node is a pointer to its link and back.
#[repr(C)]
struct Node<T> {
    link: Link,
    priority: Priority,
    child: T,
}

/// The stack of pushed nodes and the count of live handles.
pub(crate) struct Injector {
    /// The newest node, null when empty, `closed()` once the set is gone.
    head: AtomicPtr<Link>,
    /// Live `PushHandle`s: while any lives, an empty set waits instead of
    /// ending.
    handles: AtomicUsize,
}

/// The head of a closed stack: an address no node can have (nodes are
/// allocations; this is the dangling address of `Link`'s alignment).
#[inline]
fn closed() -> *mut Link {
    ptr::dangling_mut()
}

/// Drops a node that `push::<T>` made, child included.
///
/// # Safety
///
/// `link` is the link of a `Box<Node<T>>` leaked by `push::<T>`, reached by
/// nobody else.
unsafe fn drop_node<T>(link: *mut Link) {
    // SAFETY: the caller's contract: a `Box<Node<T>>`, ours alone.
    drop(unsafe { Box::from_raw(link.cast::<Node<T>>()) });
}

impl Injector {
    pub(crate) fn new() -> Self {
        Injector {
            head: AtomicPtr::new(ptr::null_mut()),
            handles: AtomicUsize::new(0),
        }
    }

    /// Pushes `child` for the owner to adopt. `Ok(true)` if the stack was
    /// empty, so the caller must wake the parent (the pusher that found it
    /// empty woke it for everything above, rule I1); the child back if the
    /// set is gone.
    pub(crate) fn push<T>(&self, child: T, priority: Priority) -> Result<bool, T> {
        let node = Box::into_raw(Box::new(Node {
            link: Link {
                next: ptr::null_mut(),
                drop: drop_node::<T>,
            },
            priority,
            child,
        }));
        let link = node.cast::<Link>();
        // Relaxed: the CAS below reads the head again before anything
        // depends on it.
        let mut head = self.head.load(Relaxed);
        loop {
            if head == closed() {
                // SAFETY: never published, so the node is still ours.
                let node = unsafe { Box::from_raw(node) };
                return Err(node.child);
            }
            // SAFETY: not published yet, so nobody else reads the node.
            unsafe { (*link).next = head };
            // Release: publishes the node (and the child in it) to the
            // owner's Acquire swap in `take`. Relaxed on failure: we retry
            // with the head we read.
            match self
                .head
                .compare_exchange_weak(head, link, Release, Relaxed)
            {
                Ok(_) => return Ok(head.is_null()),
                Err(now) => head = now,
            }
        }
    }

    /// Whether nodes wait. A hint for the owner's fast path: a push it
    /// misses is adopted at its next `sync`, and the pusher's wake (or the
    /// wake of the pusher below it) makes sure there is one (I1).
    #[inline]
    pub(crate) fn has_nodes(&self) -> bool {
        // Relaxed: a hint; `take` acquires the nodes.
        !self.head.load(Relaxed).is_null()
    }

    /// Takes every node pushed so far and hands their children to `adopt`,
    /// oldest first. Owner only, while the set lives.
    ///
    /// # Safety
    ///
    /// Every node in the stack was pushed by `push::<T>` (the handles of a
    /// set of `T` push only `T`s into its header).
    pub(crate) unsafe fn take<T>(&self, mut adopt: impl FnMut(T, Priority)) {
        // Acquire: pairs with each push's Release CAS (the swap reads the
        // last of them, and every earlier one is in its release sequence),
        // so the nodes' contents are visible.
        let mut link = self.head.swap(ptr::null_mut(), Acquire);
        debug_assert!(link != closed(), "take after close");
        // Newest first in the stack: reverse it, so handles' pushes are
        // adopted in the order they were made.
        let mut oldest = ptr::null_mut();
        while !link.is_null() {
            // SAFETY: taken out of the stack, so these nodes are ours alone.
            let next = unsafe { core::mem::replace(&mut (*link).next, oldest) };
            oldest = link;
            link = next;
        }
        while !oldest.is_null() {
            // SAFETY: ours alone (above), and a `Node<T>` (the caller's
            // contract); the box is freed without dropping the child, which
            // is moved out first.
            let node = unsafe { Box::from_raw(oldest.cast::<ManuallyDrop<Node<T>>>()) };
            oldest = node.link.next;
            // SAFETY: read once, and the node is freed without dropping it.
            let child = unsafe { ptr::read(&node.child) };
            let priority = node.priority;
            drop(node);
            adopt(child, priority);
        }
    }

    /// Closes the stack for good (the set is being dropped) and drops the
    /// children still in it. A push after this gets its child back.
    pub(crate) fn close(&self) {
        /// Drops the rest of the list if one child's `Drop` panics.
        struct DropRest(*mut Link);
        impl Drop for DropRest {
            fn drop(&mut self) {
                while !self.0.is_null() {
                    let link = self.0;
                    // SAFETY: the list was taken out of the stack by `close`,
                    // so its nodes are ours alone; `drop` is the node's own.
                    unsafe {
                        self.0 = (*link).next;
                        ((*link).drop)(link);
                    }
                }
            }
        }
        // Acquire: as in `take`, the nodes' contents are visible before we
        // drop them.
        let list = self.head.swap(closed(), Acquire);
        debug_assert!(list != closed(), "closed twice");
        drop(DropRest(list));
    }

    /// Whether the set is gone (final once true).
    pub(crate) fn is_closed(&self) -> bool {
        // Relaxed: nothing is read through the result.
        self.head.load(Relaxed) == closed()
    }

    /// One more live handle.
    pub(crate) fn add_handle(&self) {
        // Relaxed: made from the set or from a live handle, which keep the
        // count above zero; the count itself publishes nothing. Bounded by
        // the header's reference count, which aborts on overflow, since
        // every handle holds a reference.
        self.handles.fetch_add(1, Relaxed);
    }

    /// One handle fewer; `true` if it was the last, so the caller wakes the
    /// parent: an empty set waiting on handles may end now.
    pub(crate) fn drop_handle(&self) -> bool {
        // Release: the handle's pushes happen before the owner's Acquire
        // load in `may_receive` that reads the lower count.
        self.handles.fetch_sub(1, Release) == 1
    }

    /// Whether a child may still arrive: a handle lives or nodes wait. The
    /// owner ends an empty set only when this is false, read after its last
    /// read-modify-write on the parent's state (rule I1).
    pub(crate) fn may_receive(&self) -> bool {
        // Acquire: pairs with `drop_handle`, so the last handle's pushes are
        // visible to the head load below.
        self.handles.load(Acquire) != 0 || self.has_nodes()
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        // The set closes the stack when it drops, before its reference to
        // the header goes; nothing can be pushed after that.
        debug_assert!(
            {
                let head = self.head.load(Relaxed);
                head.is_null() || head == closed()
            },
            "nodes left in a header being freed"
        );
    }
}
