//! Expiry is judged at the instant an operation holds the key.
//!
//! A key's deadline is part of its state, and time moving past it is an event
//! like a write. For an operation to be linearizable it must judge "expired or
//! not" with a clock reading taken while it holds the key, not one taken
//! before or after: otherwise another caller can act between the clock
//! reading and the look at the key.
//!
//! These tests open that window on purpose: a [`TrapClock`] runs an action the
//! first time the store reads it, and the action moves time past the deadline
//! and lets another caller work on the same key. If the store reads the clock
//! outside the key's lock, the other caller gets through and the two results
//! contradict each other. If it reads the clock under the lock, the other
//! caller waits, and the results agree.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use kvcore::{ActiveExpiry, Clock, Error, Store, TtlChange};

use super::fixtures::{T0, ms};

/// How long a trap waits for the other caller to finish. The other caller
/// either finishes in microseconds (the store let it through) or blocks until
/// the trapped operation releases the key; the wait only has to tell the two
/// apart, and no result is judged by how long anything took.
const OTHER_CALLER_WAIT: Duration = Duration::from_millis(300);

type Trap = Box<dyn FnOnce(u64) -> u64 + Send>;

/// A manual clock that can be armed with a trap: the next reading runs the
/// trap with the current time and returns what the trap returns.
struct TrapClock {
    now_ms: AtomicU64,
    trap: Mutex<Option<Trap>>,
}

impl TrapClock {
    fn new(now_ms: u64) -> Arc<TrapClock> {
        Arc::new(TrapClock {
            now_ms: AtomicU64::new(now_ms),
            trap: Mutex::new(None),
        })
    }

    fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }

    fn arm(&self, trap: impl FnOnce(u64) -> u64 + Send + 'static) {
        *self.trap.lock().unwrap() = Some(Box::new(trap));
    }

    fn is_armed(&self) -> bool {
        self.trap.lock().unwrap().is_some()
    }
}

impl Clock for TrapClock {
    fn now_ms(&self) -> u64 {
        // Disarm before running, so the trap's own readings are plain ones.
        let trap = self.trap.lock().unwrap().take();
        let now = self.now_ms.load(Ordering::SeqCst);
        match trap {
            Some(trap) => trap(now),
            None => now,
        }
    }
}

impl fmt::Debug for TrapClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrapClock")
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// Runs `op` on another thread and waits up to [`OTHER_CALLER_WAIT`] for it.
/// Returns the receiver of its result either way.
fn run_other_caller<T: Send + 'static>(op: impl FnOnce() -> T + Send + 'static) -> Receiver<T> {
    let (done, result) = mpsc::channel();
    let (finished, wait) = mpsc::channel();
    thread::spawn(move || {
        let outcome = op();
        let _ = finished.send(());
        let _ = done.send(outcome);
    });
    let _ = wait.recv_timeout(OTHER_CALLER_WAIT);
    result
}

/// A store on `clock` holding `k` = `v1` whose deadline is `T0 + 10`, with
/// the clock at that deadline: the key's last live millisecond.
fn key_in_its_last_millisecond(clock: &Arc<TrapClock>) -> (Store, u64) {
    let store = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .build();
    let v1 = store.create("k", "v1", Some(ms(10))).unwrap();
    clock.set(T0 + 10);
    (store, v1)
}

#[test]
fn get_never_reports_absent_a_key_that_was_persisted_before_its_deadline() {
    let clock = TrapClock::new(T0);
    let (store, _) = key_in_its_last_millisecond(&clock);

    // The trap fires when `get` reads the clock: while the key is still
    // alive, another caller removes its deadline; then time moves past the
    // old deadline.
    let writer = store.clone();
    let trap_clock = clock.clone();
    let (update_sender, update_result) = mpsc::channel();
    clock.arm(move |now| {
        let result = run_other_caller(move || writer.update("k", "v2", TtlChange::Persist));
        update_sender.send(result).unwrap();
        trap_clock.set(now + 1);
        now + 1
    });

    let got = store.get("k").unwrap();
    assert!(
        !clock.is_armed(),
        "get must read the clock for a key with a deadline"
    );
    let updated = update_result.recv().unwrap().recv().unwrap();

    // Either the update came first (the key is persistent, get sees it) or
    // time passed first (the key expired, the update finds nothing).
    match (&got, &updated) {
        (Some(_), Ok(_)) | (None, Err(Error::NotFound)) => {}
        _ => panic!(
            "not linearizable: get returned {got:?} while the update returned {updated:?}; \
             the key was never absent"
        ),
    }
}

/// A write on `k` at version `v1`; `Ok(true)` when it replaced a live key.
type Write = fn(&Store, u64) -> Result<bool, Error>;

#[test]
fn a_write_never_revives_a_key_that_another_caller_has_seen_expire() {
    let writes: &[(&str, Write)] = &[
        ("update with persist", |store, _| {
            store.update("k", "v2", TtlChange::Persist).map(|_| true)
        }),
        ("upsert with a new ttl", |store, _| {
            store
                .upsert("k", "v2", TtlChange::Set(Duration::from_secs(3600)))
                .map(|written| !written.created)
        }),
        ("compare-and-swap with persist", |store, v1| {
            store
                .compare_and_swap("k", v1, "v2", TtlChange::Persist)
                .map(|_| true)
        }),
    ];
    for (message, write) in writes {
        let clock = TrapClock::new(T0);
        let (store, v1) = key_in_its_last_millisecond(&clock);

        // The trap fires when the write reads the clock: time moves past the
        // deadline, then another caller looks at the key. A compare-and-swap
        // that cannot match is the look: it reports the current version (or
        // none) and, unlike `get`, leaves an expired record where it is.
        let observer = store.clone();
        let trap_clock = clock.clone();
        let (observed_sender, observed_result) = mpsc::channel();
        clock.arm(move |now| {
            trap_clock.set(now + 1);
            let result = run_other_caller(move || {
                observer.compare_and_swap("k", u64::MAX, "x", TtlChange::Keep)
            });
            observed_sender.send(result).unwrap();
            // The write's reading was taken just before time moved.
            now
        });

        let written = write(&store, v1);
        assert!(
            !clock.is_armed(),
            "{message}: the write must read the clock"
        );
        let observed = observed_result.recv().unwrap().recv().unwrap();

        match (&written, &observed) {
            // The write came before time moved: the observer sees its result.
            (
                Ok(true),
                Err(Error::VersionMismatch {
                    current: Some(_), ..
                }),
            ) => {}
            // Time moved first: the write finds the key expired (and fails,
            // or creates it anew).
            (Ok(false) | Err(_), Err(Error::VersionMismatch { current: None, .. })) => {}
            _ => panic!(
                "{message}: not linearizable: the write returned {written:?} after \
                 another caller saw the key expired ({observed:?})"
            ),
        }
    }
}
