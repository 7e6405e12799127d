//! Stores on a clock the test moves by hand.

use std::sync::Arc;
use std::time::Duration;

use kvcore::{ActiveExpiry, ManualClock, Store, StoreBuilder};

/// Where manual clocks start: an ordinary wall-clock time (Nov 2023), so
/// deadlines look like real ones.
pub const T0: u64 = 1_700_000_000_000;

/// A store with default settings on a manual clock at [`T0`], with no
/// background reclaimer: time moves only when the test says so.
pub fn manual_store() -> (Store, Arc<ManualClock>) {
    manual_store_with(Store::builder())
}

/// Like [`manual_store`], starting from a configured builder.
pub fn manual_store_with(builder: StoreBuilder) -> (Store, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let store = builder
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .build();
    (store, clock)
}

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
