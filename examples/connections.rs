//! A server's view of many client connections, merged in one
//! `IndexedStreamsUnordered`.
//!
//! Each connection is a stream of messages: either a tokio channel fed by
//! the client's own task at its own rate, or a timer-driven stream
//! (heartbeats). The server reads them all through one set, knows from the
//! key which connection each message came from, and cancels connections by
//! key: some clients are disconnected after a number of messages, the slow
//! ones time out at a deadline, and a reconnecting client takes a freed
//! slot. At the end it prints what happened and checks its own books:
//! for every connection, `received + lost in flight = sent`.
//!
//! ```text
//! cargo run --example connections
//! ```

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval};
use velodrome::{IndexedStreamsUnordered, Key};

/// One message from a client.
#[derive(Debug)]
struct Message {
    conn: usize,
    seq: u32,
}

/// One connection, as the server sees it: a stream of messages that ends
/// when the client hangs up.
enum Connection {
    /// A client task sends through a bounded channel.
    Channel { rx: mpsc::Receiver<Message> },
    /// A heartbeat every `interval`, `total` in all.
    Timer {
        id: usize,
        interval: Interval,
        next: u32,
        total: u32,
    },
}

impl Connection {
    /// Messages already sent but not yet read (lost if we hang up now).
    fn in_flight(&self) -> usize {
        match self {
            Connection::Channel { rx } => rx.len(),
            Connection::Timer { .. } => 0,
        }
    }
}

impl Stream for Connection {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        match self.get_mut() {
            Connection::Channel { rx } => rx.poll_recv(cx),
            Connection::Timer {
                id,
                interval,
                next,
                total,
            } => {
                if next == total {
                    return Poll::Ready(None);
                }
                ready!(interval.poll_tick(cx));
                *next += 1;
                Poll::Ready(Some(Message {
                    conn: *id,
                    seq: *next - 1,
                }))
            }
        }
    }
}

/// What happens to a connection.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fate {
    /// Sends everything, then hangs up.
    Completes,
    /// The server disconnects it after this many messages.
    Kicked { after: u32 },
    /// Too slow: still open at the deadline, so the server times it out.
    TimesOut,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Channel,
    Timer,
}

#[derive(Clone, Copy, Debug)]
struct Plan {
    kind: Kind,
    messages: u32,
    /// Time between messages; `None`: as fast as the channel takes them.
    period: Option<Duration>,
    fate: Fate,
}

#[derive(Debug, PartialEq)]
enum Status {
    Open,
    Ended,
    Kicked,
    TimedOut,
}

/// The server's books on one connection.
struct Books {
    plan: Plan,
    key: Key,
    received: u32,
    lost_in_flight: u32,
    status: Status,
    /// The client task (channel connections): returns how many it sent.
    client: Option<JoinHandle<u32>>,
    sent: u32,
}

/// The plans: twelve clients on channels, six on timers; two get kicked
/// (one of them a client that sends in bursts, so messages are in flight
/// when it is kicked), two time out (they would need far longer than the
/// deadline).
fn plans() -> Vec<Plan> {
    let ms = Duration::from_millis;
    (0..18)
        .map(|id: u32| {
            let kind = if id < 12 { Kind::Channel } else { Kind::Timer };
            let fate = match id {
                3 | 13 => Fate::Kicked { after: 5 },
                7 | 16 => Fate::TimesOut,
                _ => Fate::Completes,
            };
            let (messages, period) = match (kind, fate) {
                (_, Fate::TimesOut) => (1_000, Some(ms(5))),
                (Kind::Channel, Fate::Kicked { .. }) => (200, None),
                _ => (10 + id * 2, Some(ms(1 + u64::from(id % 4)))),
            };
            Plan {
                kind,
                messages,
                period,
                fate,
            }
        })
        .collect()
}

/// Opens connection `id`: starts its client (channel) or its timer.
fn connect(id: usize, plan: Plan) -> (Connection, Option<JoinHandle<u32>>) {
    match plan.kind {
        Kind::Channel => {
            let (tx, rx) = mpsc::channel(8);
            let client = tokio::spawn(async move {
                let mut ticks = plan.period.map(tokio::time::interval);
                let mut sent = 0;
                for seq in 0..plan.messages {
                    if let Some(ticks) = &mut ticks {
                        ticks.tick().await;
                    }
                    if tx.send(Message { conn: id, seq }).await.is_err() {
                        break; // the server hung up
                    }
                    sent += 1;
                }
                sent
            });
            (Connection::Channel { rx }, Some(client))
        }
        Kind::Timer => (
            Connection::Timer {
                id,
                interval: tokio::time::interval(plan.period.expect("timers have a period")),
                next: 0,
                total: plan.messages,
            },
            None,
        ),
    }
}

struct Server {
    set: IndexedStreamsUnordered<Connection>,
    books: Vec<Books>,
    by_key: HashMap<Key, usize>,
}

impl Server {
    fn open(&mut self, plan: Plan) -> usize {
        let id = self.books.len();
        let (connection, client) = connect(id, plan);
        let key = self.set.insert(connection);
        self.by_key.insert(key, id);
        self.books.push(Books {
            plan,
            key,
            received: 0,
            lost_in_flight: 0,
            status: Status::Open,
            client,
            sent: 0,
        });
        id
    }

    /// Hangs up on connection `id`, counting what was still in flight.
    fn hang_up(&mut self, id: usize, status: Status) {
        let key = self.books[id].key;
        // Between reading the backlog and the cancel nothing else runs (one
        // thread, no await), so the count is exact.
        let in_flight = self
            .set
            .get_pin_mut(key)
            .expect("an open connection is in the set")
            .in_flight();
        assert!(self.set.cancel(key));
        assert!(!self.set.contains(key), "a cancelled key names nothing");
        let books = &mut self.books[id];
        books.lost_in_flight = in_flight as u32;
        books.status = status;
        println!(
            "  conn {id:2} {:?}: {} messages read, {in_flight} lost in flight",
            books.status, books.received
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let mut server = Server {
        set: IndexedStreamsUnordered::new(),
        books: Vec::new(),
        by_key: HashMap::new(),
    };
    for plan in plans() {
        server.open(plan);
    }
    println!("{} connections open", server.set.len());

    let deadline = started + Duration::from_millis(150);
    let mut timed_out = false;
    let mut reconnected = false;
    loop {
        let next = if timed_out {
            server.set.next().await
        } else {
            match tokio::time::timeout_at(deadline, server.set.next()).await {
                Ok(next) => next,
                Err(_) => {
                    timed_out = true;
                    println!(
                        "deadline after {:?}: timing out slow clients",
                        started.elapsed()
                    );
                    let slow: Vec<usize> = (0..server.books.len())
                        .filter(|&id| server.books[id].status == Status::Open)
                        .filter(|&id| server.books[id].plan.fate == Fate::TimesOut)
                        .collect();
                    for id in slow {
                        server.hang_up(id, Status::TimedOut);
                    }
                    continue;
                }
            }
        };
        let Some((key, message)) = next else { break };
        let id = server.by_key[&key];
        let Some(message) = message else {
            server.books[id].status = Status::Ended;
            continue;
        };
        let books = &mut server.books[id];
        assert_eq!(message.conn, id, "the key names the connection");
        assert_eq!(
            message.seq, books.received,
            "a connection's messages in order"
        );
        books.received += 1;
        if books.plan.fate
            == (Fate::Kicked {
                after: books.received,
            })
        {
            server.hang_up(id, Status::Kicked);
            if !reconnected {
                // The client reconnects; its new connection takes the freed slot.
                reconnected = true;
                let plan = Plan {
                    fate: Fate::Completes,
                    messages: 12,
                    ..server.books[id].plan
                };
                let new_id = server.open(plan);
                let new_key = server.books[new_id].key;
                assert_eq!(new_key.index(), key.index());
                assert!(!server.set.contains(key) && server.set.contains(new_key));
                println!(
                    "  conn {new_id:2} reconnects conn {id}: slot {} reused, new key",
                    new_key.index()
                );
            }
        }
    }

    for books in &mut server.books {
        books.sent = match books.client.take() {
            Some(client) => client.await.expect("client task"),
            // A timer's messages exist once read.
            None => books.received,
        };
    }

    println!();
    println!("conn  kind     slot  planned   sent   read   lost  status");
    for (id, b) in server.books.iter().enumerate() {
        println!(
            "{id:4}  {:7}  {:4}  {:7}  {:5}  {:5}  {:5}  {:?}",
            format!("{:?}", b.plan.kind).to_lowercase(),
            b.key.index(),
            b.plan.messages,
            b.sent,
            b.received,
            b.lost_in_flight,
            b.status
        );
    }
    let sum = |f: fn(&Books) -> u32| server.books.iter().map(f).sum::<u32>();
    let count = |status: Status| server.books.iter().filter(|b| b.status == status).count();
    let (sent, read, lost) = (
        sum(|b| b.sent),
        sum(|b| b.received),
        sum(|b| b.lost_in_flight),
    );
    println!();
    println!(
        "{} connections: {} ended, {} kicked, {} timed out",
        server.books.len(),
        count(Status::Ended),
        count(Status::Kicked),
        count(Status::TimedOut)
    );
    println!("messages: {sent} sent = {read} read + {lost} lost in flight at hang-up");
    println!("took {:?}", started.elapsed());

    // The books must balance.
    assert_eq!(sent, read + lost);
    assert_eq!(
        count(Status::Open),
        0,
        "every connection ended or was cancelled"
    );
    assert!(server.set.is_empty());
    for (id, b) in server.books.iter().enumerate() {
        assert_eq!(b.sent, b.received + b.lost_in_flight, "conn {id}");
        match b.status {
            Status::Ended => {
                assert_eq!(b.received, b.plan.messages, "conn {id} read everything");
                assert_eq!(b.lost_in_flight, 0);
            }
            Status::Kicked => assert_eq!(Fate::Kicked { after: b.received }, b.plan.fate),
            Status::TimedOut => assert!(b.received < b.plan.messages),
            Status::Open => unreachable!(),
        }
    }
    println!("books balance: read + lost = sent for every connection");
}
