//! Compile-time checks of the auto traits of `FuturesUnordered` and its
//! iterators: the positive bounds (a failure is an error "`X` cannot be sent
//! between threads safely") and the negative ones (a failure is an error
//! "type annotations needed" at an `assert_not_*!` line, because the probe
//! trait becomes ambiguous exactly when the type implements the auto trait).
//!
//! The bounds are those of `futures::stream::FuturesUnordered` 0.3: the set
//! is `Unpin` always, `Send` if `F: Send`, `Sync` if `F: Send + Sync`;
//! iterators that hand out `&F` need `F: Sync` to be `Send`, iterators that
//! hand out `&mut F` or `F` need `F: Send`. Two soundness bugs of
//! futures-util came from hand-written `unsafe impl Send/Sync` on this type
//! (futures-rs #2786, #3002), hence the negative checks.
//!
//! The checks take values rather than type names, so they do not depend on
//! the path the iterator types are exported at.

use std::cell::Cell;
use std::future::Future;
use std::marker::{PhantomData, PhantomPinned};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::MutexGuard;
use std::task::{Context, Poll};

use futures::future::{ready, Ready};
use velodrome::FuturesUnordered;

fn assert_send<T: Send>(_: &T) {}
fn assert_sync<T: Sync>(_: &T) {}
fn assert_unpin<T: Unpin>(_: &T) {}

/// Fails to compile ("type annotations needed") if the value's type is `Send`.
macro_rules! assert_not_send {
    ($value:expr) => {{
        trait AmbiguousIfSend<A> {
            fn probe(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfSend<()> for T {}
        impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
        AmbiguousIfSend::probe(&$value);
    }};
}

/// Fails to compile ("type annotations needed") if the value's type is `Sync`.
macro_rules! assert_not_sync {
    ($value:expr) => {{
        trait AmbiguousIfSync<A> {
            fn probe(&self) {}
        }
        impl<T: ?Sized> AmbiguousIfSync<()> for T {}
        impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
        AmbiguousIfSync::probe(&$value);
    }};
}

/// `Send`, `!Sync`, `Unpin`.
struct SendNotSync(Cell<u32>);

impl Future for SendNotSync {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(self.0.get())
    }
}

/// `!Send`, `Sync`, `Unpin`.
struct SyncNotSend(PhantomData<MutexGuard<'static, ()>>);

impl Future for SyncNotSend {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// `!Send`, `!Sync`, `Unpin`.
struct NeitherSendNorSync(Rc<u32>);

impl Future for NeitherSendNorSync {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u32> {
        Poll::Ready(*self.0)
    }
}

/// `Send`, `Sync`, `!Unpin`.
struct NotUnpin(PhantomPinned);

impl Future for NotUnpin {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

#[test]
fn set_and_iterators_of_send_sync_children_are_send_sync_unpin() {
    let mut set = FuturesUnordered::<Ready<u32>>::new();
    set.push(ready(1));
    assert_send(&set);
    assert_sync(&set);
    assert_unpin(&set);

    let iter = set.iter();
    assert_send(&iter);
    assert_sync(&iter);
    assert_unpin(&iter);

    let iter = Pin::new(&set).iter_pin_ref();
    assert_send(&iter);
    assert_sync(&iter);
    assert_unpin(&iter);

    let iter = set.iter_mut();
    assert_send(&iter);
    assert_sync(&iter);
    assert_unpin(&iter);

    let iter = Pin::new(&mut set).iter_pin_mut();
    assert_send(&iter);
    assert_sync(&iter);
    assert_unpin(&iter);

    let iter = set.into_iter();
    assert_send(&iter);
    assert_sync(&iter);
    assert_unpin(&iter);
}

#[test]
fn set_of_not_unpin_children_is_unpin() {
    let mut set = FuturesUnordered::<NotUnpin>::new();
    assert_unpin(&set);
    assert_send(&set);
    assert_sync(&set);

    let iter = Pin::new(&set).iter_pin_ref();
    assert_unpin(&iter);
    assert_send(&iter);

    let iter = Pin::new(&mut set).iter_pin_mut();
    assert_unpin(&iter);
    assert_send(&iter);
}

#[test]
fn set_of_send_not_sync_children_is_send_not_sync() {
    let mut set = FuturesUnordered::<SendNotSync>::new();
    set.push(SendNotSync(Cell::new(0)));
    assert_send(&set);
    // Sharing the set would hand out `&F` (through `iter`) on two threads.
    assert_not_sync!(set);
    assert_unpin(&set);

    // Iterators handing out `&F` must not cross threads when `F: !Sync`.
    assert_not_send!(set.iter());
    assert_not_sync!(set.iter());
    assert_not_send!(Pin::new(&set).iter_pin_ref());
    assert_not_sync!(Pin::new(&set).iter_pin_ref());

    // Iterators handing out `&mut F` or `F` only need `F: Send`.
    assert_send(&set.iter_mut());
    assert_not_sync!(set.iter_mut());
    assert_send(&Pin::new(&mut set).iter_pin_mut());
    assert_not_sync!(Pin::new(&mut set).iter_pin_mut());
    let iter = set.into_iter();
    assert_send(&iter);
    assert_not_sync!(iter);
}

#[test]
fn set_of_sync_not_send_children_is_neither_send_nor_sync() {
    let mut set = FuturesUnordered::<SyncNotSend>::new();
    assert_not_send!(set);
    // `push(&self)` through a shared set would move `F` across threads.
    assert_not_sync!(set);
    assert_unpin(&set);

    assert_not_send!(set.iter_mut());
    assert_not_send!(Pin::new(&mut set).iter_pin_mut());
    assert_not_send!(set.into_iter());
}

#[test]
fn set_of_neither_send_nor_sync_children_is_neither() {
    let mut set = FuturesUnordered::<NeitherSendNorSync>::new();
    set.push(NeitherSendNorSync(Rc::new(3)));
    assert_not_send!(set);
    assert_not_sync!(set);
    assert_unpin(&set);

    assert_not_send!(set.iter());
    assert_not_sync!(set.iter());
    assert_not_send!(Pin::new(&set).iter_pin_ref());
    assert_not_sync!(Pin::new(&set).iter_pin_ref());
    assert_not_send!(set.iter_mut());
    assert_not_sync!(set.iter_mut());
    assert_not_send!(Pin::new(&mut set).iter_pin_mut());
    assert_not_sync!(Pin::new(&mut set).iter_pin_mut());
    let iter = set.into_iter();
    assert_not_send!(iter);
    assert_not_sync!(iter);
}

#[test]
fn probe_macros_accept_exactly_the_non_implementors() {
    // Self-check of the probes on std types with known auto traits, so a
    // probe that accepts everything cannot go unnoticed.
    assert_not_send!(Rc::new(0_u8));
    assert_not_sync!(Cell::new(0_u8));
    assert_send(&Cell::new(0_u8));
    assert_sync(&PhantomData::<MutexGuard<'static, ()>>);
}
