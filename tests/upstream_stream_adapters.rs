//! futures-rs's own tests of the buffered adapters, run against velodrome.
//!
//! futures-0.3.34's `tests/stream.rs` and `tests/stream_try_stream.rs` have
//! no test of `buffered`, `buffer_unordered`, `for_each_concurrent` or their
//! `try_` forms, so these are the doc tests of those methods in
//! `futures-util-0.3.34/src/stream/stream/mod.rs` and
//! `src/stream/try_stream/mod.rs` (`buffered` has none), one `#[test]` per
//! example, with the doc test's hidden `block_on` lines written out.
//! `tests/upstream_stream_buffer_unordered.rs` has `stream_buffer_unordered.rs`.
//!
//! Changed: the imports (a `use velodrome::...` line in each test) and the
//! method names, each with its `fair_` prefix (`buffer_unordered` ->
//! `fair_buffer_unordered`, ...). Formatted by `cargo fmt`.
// Upstream's imports are kept as they are; the methods some of them
// provided now come from velodrome's traits.
#![allow(unused_imports)]

#[test]
fn for_each_concurrent() {
    futures::executor::block_on(async {
        use futures::channel::oneshot;
        use futures::stream::{self, StreamExt};
        use velodrome::FairStreamExt;

        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let (tx3, rx3) = oneshot::channel();

        let fut = stream::iter(vec![rx1, rx2, rx3]).fair_for_each_concurrent(
            /* limit */ 2,
            |rx| async move {
                rx.await.unwrap();
            },
        );
        tx1.send(()).unwrap();
        tx2.send(()).unwrap();
        tx3.send(()).unwrap();
        fut.await;
    })
}

#[test]
fn buffer_unordered() {
    futures::executor::block_on(async {
        use futures::channel::oneshot;
        use futures::stream::{self, StreamExt};
        use velodrome::FairStreamExt;

        let (send_one, recv_one) = oneshot::channel();
        let (send_two, recv_two) = oneshot::channel();

        let stream_of_futures = stream::iter(vec![recv_one, recv_two]);
        let mut buffered = stream_of_futures.fair_buffer_unordered(10);

        send_two.send(2i32)?;
        assert_eq!(buffered.next().await, Some(Ok(2i32)));

        send_one.send(1i32)?;
        assert_eq!(buffered.next().await, Some(Ok(1i32)));

        assert_eq!(buffered.next().await, None);
        Ok::<(), i32>(())
    })
    .unwrap();
}

#[test]
fn try_for_each_concurrent() {
    futures::executor::block_on(async {
        use futures::channel::oneshot;
        use futures::stream::{self, StreamExt, TryStreamExt};
        use velodrome::FairTryStreamExt;

        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let (_tx3, rx3) = oneshot::channel();

        let stream = stream::iter(vec![rx1, rx2, rx3]);
        let fut =
            stream
                .map(Ok)
                .fair_try_for_each_concurrent(/* limit */ 2, |rx| async move {
                    let res: Result<(), oneshot::Canceled> = rx.await;
                    res
                });

        tx1.send(()).unwrap();
        // Drop the second sender so that `rx2` resolves to `Canceled`.
        drop(tx2);

        // The final result is an error because the second future
        // resulted in an error.
        assert_eq!(Err(oneshot::Canceled), fut.await);
    })
}

#[test]
fn try_buffer_unordered_results_in_the_order_of_completion() {
    futures::executor::block_on(async {
        use futures::channel::oneshot;
        use futures::stream::{self, StreamExt, TryStreamExt};
        use velodrome::FairTryStreamExt;

        let (send_one, recv_one) = oneshot::channel();
        let (send_two, recv_two) = oneshot::channel();

        let stream_of_futures = stream::iter(vec![Ok(recv_one), Ok(recv_two)]);

        let mut buffered = stream_of_futures.fair_try_buffer_unordered(10);

        send_two.send(2i32)?;
        assert_eq!(buffered.next().await, Some(Ok(2i32)));

        send_one.send(1i32)?;
        assert_eq!(buffered.next().await, Some(Ok(1i32)));

        assert_eq!(buffered.next().await, None);
        Ok::<(), i32>(())
    })
    .unwrap();
}

#[test]
fn try_buffer_unordered_propagates_errors_of_the_stream() {
    futures::executor::block_on(async {
        use futures::channel::mpsc;
        use futures::stream::{StreamExt, TryStreamExt};
        use velodrome::FairTryStreamExt;

        let (sink, stream_of_futures) = mpsc::unbounded();
        let mut buffered = stream_of_futures.fair_try_buffer_unordered(10);

        sink.unbounded_send(Ok(async { Ok(7i32) }))?;
        assert_eq!(buffered.next().await, Some(Ok(7i32)));

        sink.unbounded_send(Err("error in the stream"))?;
        assert_eq!(buffered.next().await, Some(Err("error in the stream")));
        Ok::<(), Box<dyn std::error::Error>>(())
    })
    .unwrap();
}

#[test]
fn try_buffered_results_in_the_order_of_addition() {
    futures::executor::block_on(async {
        use futures::channel::oneshot;
        use futures::future::lazy;
        use futures::stream::{self, StreamExt, TryStreamExt};
        use velodrome::FairTryStreamExt;

        let (send_one, recv_one) = oneshot::channel();
        let (send_two, recv_two) = oneshot::channel();

        let mut buffered = lazy(move |cx| {
            let stream_of_futures = stream::iter(vec![Ok(recv_one), Ok(recv_two)]);

            let mut buffered = stream_of_futures.fair_try_buffered(10);

            assert!(buffered.try_poll_next_unpin(cx).is_pending());

            send_two.send(2i32)?;
            assert!(buffered.try_poll_next_unpin(cx).is_pending());
            Ok::<_, i32>(buffered)
        })
        .await?;

        send_one.send(1i32)?;
        assert_eq!(buffered.next().await, Some(Ok(1i32)));
        assert_eq!(buffered.next().await, Some(Ok(2i32)));

        assert_eq!(buffered.next().await, None);
        Ok::<(), i32>(())
    })
    .unwrap();
}

#[test]
fn try_buffered_propagates_errors_of_the_stream() {
    futures::executor::block_on(async {
        use futures::channel::mpsc;
        use futures::stream::{StreamExt, TryStreamExt};
        use velodrome::FairTryStreamExt;

        let (sink, stream_of_futures) = mpsc::unbounded();
        let mut buffered = stream_of_futures.fair_try_buffered(10);

        sink.unbounded_send(Ok(async { Ok(7i32) }))?;
        assert_eq!(buffered.next().await, Some(Ok(7i32)));

        sink.unbounded_send(Err("error in the stream"))?;
        assert_eq!(buffered.next().await, Some(Err("error in the stream")));
        Ok::<(), Box<dyn std::error::Error>>(())
    })
    .unwrap();
}
