//! A loopback TCP server with a connection limit and a per-request timeout,
//! driven by clients in the same process.
//!
//! The server runs in one task with two sets:
//!
//! - the connections, an `IndexedStreamsUnordered::with_limit(LIMIT)` of
//!   request streams (one line per request): `try_insert` hands back a
//!   connection that arrives while `LIMIT` are open, and the server refuses
//!   it (`busy`); one that the client closes leaves the set;
//! - the requests in flight, a `Deadlines<FuturesUnordered<_>>`: each
//!   request is inserted with a timeout, and one that is still running at
//!   its deadline is dropped and reported with its key, so the server
//!   answers `timeout` to the right connection. One timer serves them all.
//!
//! The clients open `CLIENTS` connections at once (more than the limit), and
//! each sends a few requests one after the other; some of them (`hang`)
//! never finish in time. At the end both sides print their books, and the
//! example checks that nothing was lost: every request sent was refused,
//! timed out or served, and the clients saw exactly what the server did.
//!
//! ```text
//! cargo run --example server
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use velodrome::{Deadlines, FuturesUnordered, IndexedStreamsUnordered, Key};

/// Connections open at once; one more is refused.
const LIMIT: usize = 8;
/// Client connections, all opened at once.
const CLIENTS: usize = 24;
/// Requests each accepted client sends, one after the other.
const REQUESTS_PER_CLIENT: usize = 4;
/// Time a request may take.
const TIMEOUT: Duration = Duration::from_millis(100);

/// The requests of one connection: one per line, until the client closes.
struct Requests(Lines<BufReader<OwnedReadHalf>>);

impl Stream for Requests {
    type Item = String;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        match Pin::new(&mut self.0).poll_next_line(cx) {
            Poll::Ready(Ok(line)) => Poll::Ready(line),
            // A broken connection ends like a closed one.
            Poll::Ready(Err(_)) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Serves one request: `work <ms>` takes that long, `hang` takes far longer
/// than the timeout.
async fn handle(request: String) -> String {
    let work = match request.strip_prefix("work ") {
        Some(ms) => Duration::from_millis(ms.parse().unwrap_or(0)),
        None => Duration::from_secs(3600),
    };
    tokio::time::sleep(work).await;
    format!("ok {}\n", work.as_millis())
}

/// What one side counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Books {
    sent: usize,
    refused: usize,
    timed_out: usize,
    served: usize,
}

impl std::ops::AddAssign for Books {
    fn add_assign(&mut self, other: Books) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.timed_out += other.timed_out;
        self.served += other.served;
    }
}

/// The server: accepts, reads requests, answers them, until `stop`.
async fn serve(listener: TcpListener, mut stop: oneshot::Receiver<()>) -> io::Result<Books> {
    let mut connections: IndexedStreamsUnordered<Requests> =
        IndexedStreamsUnordered::with_limit(LIMIT);
    let mut writers: HashMap<Key, OwnedWriteHalf> = HashMap::new();
    let mut requests = Deadlines::<FuturesUnordered<_>>::new();
    // Request key -> connection key.
    let mut asked_by: HashMap<Key, Key> = HashMap::new();
    let mut books = Books::default();
    let mut most_requests = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (read, mut write) = accepted?.0.into_split();
                match connections.try_insert(Requests(BufReader::new(read).lines())) {
                    Ok(conn) => {
                        write.write_all(b"hello\n").await?;
                        writers.insert(conn, write);
                    }
                    Err(full) => {
                        // Refused: the set hands the connection back; the
                        // request this client is about to send is answered
                        // here, and the connection closes.
                        drop(full.into_inner());
                        write.write_all(b"busy\n").await?;
                        books.refused += 1;
                    }
                }
            }
            Some((conn, line)) = connections.next() => match line {
                Some(request) => {
                    let key = requests.insert_with_timeout(handle(request), TIMEOUT);
                    asked_by.insert(key, conn);
                    most_requests = most_requests.max(requests.len());
                }
                // The client closed: its slot is free.
                None => drop(writers.remove(&conn)),
            },
            Some((key, result)) = requests.next() => {
                let reply = match result {
                    Ok(reply) => {
                        books.served += 1;
                        reply
                    }
                    Err(_elapsed) => {
                        books.timed_out += 1;
                        "timeout\n".to_owned()
                    }
                };
                let conn = asked_by.remove(&key).expect("every request has its connection");
                if let Some(writer) = writers.get_mut(&conn) {
                    writer.write_all(reply.as_bytes()).await?;
                }
            }
            _ = &mut stop => break,
        }
    }
    assert!(
        requests.is_empty() && asked_by.is_empty(),
        "requests left unanswered"
    );
    assert!(
        most_requests <= LIMIT,
        "one request per connection at a time"
    );
    books.sent = books.refused + books.timed_out + books.served;
    Ok(books)
}

/// One client: connects, then sends its requests one after the other
/// (request `r` of client `id` hangs if `(id + r) % 5 == 0`).
async fn client(addr: SocketAddr, id: usize) -> io::Result<Books> {
    let (read, mut write) = TcpStream::connect(addr).await?.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut books = Books::default();
    let greeting = lines.next_line().await?;
    books.sent += 1;
    if greeting.as_deref() == Some("busy") {
        books.refused += 1;
        return Ok(books);
    }
    assert_eq!(greeting.as_deref(), Some("hello"));
    for r in 0..REQUESTS_PER_CLIENT {
        if r > 0 {
            books.sent += 1;
        }
        let request = if (id + r) % 5 == 0 {
            "hang\n".to_owned()
        } else {
            format!("work {}\n", 5 + (id * 7 + r * 3) % 20)
        };
        write.write_all(request.as_bytes()).await?;
        match lines.next_line().await?.as_deref() {
            Some("timeout") => books.timed_out += 1,
            Some(reply) if reply.starts_with("ok ") => books.served += 1,
            other => panic!("client {id}: unexpected reply {other:?}"),
        }
    }
    Ok(books)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    let started = Instant::now();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(serve(listener, stopped));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(addr, id)))
        .collect();
    let mut seen = Books::default();
    for client in clients {
        seen += client.await.expect("client task")?;
    }
    let _ = stop.send(());
    let books = server.await.expect("server task")?;

    println!(
        "limit {LIMIT} connections, timeout {} ms per request",
        TIMEOUT.as_millis()
    );
    println!("            sent  refused  timed out  served");
    for (side, b) in [("clients", seen), ("server", books)] {
        println!(
            "{side:>8}  {:>6}  {:>7}  {:>9}  {:>6}",
            b.sent, b.refused, b.timed_out, b.served
        );
    }
    println!("done in {} ms", started.elapsed().as_millis());

    assert_eq!(seen, books, "the clients saw what the server did");
    assert_eq!(
        seen.refused + seen.timed_out + seen.served,
        seen.sent,
        "nothing lost"
    );
    assert!(
        seen.refused > 0,
        "more connections than the limit: some refused"
    );
    assert!(seen.timed_out > 0 && seen.served > 0);
    println!("nothing lost: refused + timed out + served == sent");
    Ok(())
}
