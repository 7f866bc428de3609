//! Quick end-to-end checks: many children, cross-thread wakes.

use futures::StreamExt;
use velodrome::FuturesUnordered;

const N: u32 = if cfg!(miri) { 30 } else { 2000 };

#[test]
fn smoke() {
    futures::executor::block_on(async {
        let mut set = FuturesUnordered::new();
        for i in 0..N {
            set.push(Box::pin(async move {
                for _ in 0..(i % 5) {
                    tokio::task::yield_now().await;
                }
                i
            })
                as std::pin::Pin<Box<dyn std::future::Future<Output = u32>>>);
        }
        let mut sum = 0u64;
        while let Some(i) = set.next().await {
            sum += i as u64;
            if i % 7 == 0 && i < 500 {
                set.push(Box::pin(async move { 1_000_000 }));
            }
        }
        let extra = (0..(N as u64).min(500)).filter(|i| i % 7 == 0).count() as u64 * 1_000_000;
        assert_eq!(sum, (N as u64 - 1) * N as u64 / 2 + extra);
        assert!(set.is_terminated());
        use futures::stream::FusedStream;
        assert!(set.is_terminated());
        let v: Vec<_> = set.collect().await;
        assert!(v.is_empty());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_thread() {
    let mut set = FuturesUnordered::new();
    let mut txs = Vec::new();
    for i in 0..N {
        let (tx, rx) = tokio::sync::oneshot::channel();
        txs.push(tx);
        set.push(async move { rx.await.unwrap() + i });
    }
    tokio::spawn(async move {
        for (i, tx) in txs.into_iter().enumerate() {
            tx.send(i as u32).unwrap();
        }
    });
    let mut n = 0;
    while set.next().await.is_some() {
        n += 1;
    }
    assert_eq!(n, N);
}
