//! The background reclaimer gives expired keys' memory back by itself.
//!
//! These are the only tests that wait, and they wait for a thread, not for
//! time to pass: the clock is still moved by hand. Each wait is a bounded poll
//! that fails the test if the reclaimer never does its job.

use std::sync::Arc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use kvcore::{ActiveExpiry, Clock, ManualClock, Store};

use super::fixtures::{T0, ms};

/// How long a test waits for the reclaimer before declaring it broken.
const PATIENCE: Duration = Duration::from_secs(5);

/// A clock that shows the test's own thread a time of its choosing and every
/// other thread (the reclaimer) a manual clock.
///
/// The test thread sees a time before every deadline, so nothing it calls
/// (`stats`, `len`) can reclaim a key: whatever disappears was reclaimed by
/// the background thread.
#[derive(Debug)]
struct SplitClock {
    observer: ThreadId,
    observer_ms: u64,
    others: ManualClock,
}

impl Clock for SplitClock {
    fn now_ms(&self) -> u64 {
        if thread::current().id() == self.observer {
            self.observer_ms
        } else {
            self.others.now_ms()
        }
    }
}

/// Polls `done` every few milliseconds until it holds or [`PATIENCE`] runs out.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let give_up = Instant::now() + PATIENCE;
    while Instant::now() < give_up {
        if done() {
            return true;
        }
        thread::sleep(ms(5));
    }
    done()
}

#[test]
fn the_background_reclaimer_shrinks_a_store_nobody_reads() {
    let clock = Arc::new(SplitClock {
        observer: thread::current().id(),
        observer_ms: T0,
        others: ManualClock::new(T0),
    });
    let store = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Background { interval: ms(10) })
        .build();
    for i in 0..1000 {
        store
            .create(&format!("session/{i}"), "v", Some(ms(100)))
            .unwrap();
    }
    for i in 0..10 {
        store.create(&format!("config/{i}"), "v", None).unwrap();
    }
    assert_eq!(store.stats().keys, 1010);

    clock.others.set(T0 + 101);

    let reclaimed = wait_until(|| store.stats().expired_reclaimed == 1000);
    let stats = store.stats();
    assert!(
        reclaimed,
        "the reclaimer did not free the expired keys within {PATIENCE:?}: {stats:?}"
    );
    assert_eq!(stats.keys, 10, "only the keys without a deadline remain");
    assert!(store.get("config/0").unwrap().is_some());
}

#[test]
fn the_reclaimer_never_keeps_a_dropped_store_alive() {
    let clock = Arc::new(ManualClock::new(T0));
    let store = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Background { interval: ms(1) })
        .build();
    store.create("k", "v", Some(ms(1))).unwrap();
    clock.advance(2);
    assert_eq!(Arc::strong_count(&clock), 2, "the test and the store");

    drop(store);

    // The store's last reference goes with the handle, or with the end of a
    // pass that was running at that moment.
    assert!(
        wait_until(|| Arc::strong_count(&clock) == 1),
        "the store was not dropped within {PATIENCE:?}"
    );
}
