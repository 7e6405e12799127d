//! Create, read, update and delete, with a TTL.
//!
//! Run: `cargo run -p examples --bin crud_with_ttl`

use std::sync::Arc;
use std::time::Duration;

use kvcore::{ActiveExpiry, Error, ManualClock, Store, TtlChange};

fn main() -> Result<(), Error> {
    // A manual clock makes expiry visible without waiting; a real program
    // uses the default system clock (`Store::new()`).
    let clock = Arc::new(ManualClock::new(1_000_000));
    let store = Store::builder()
        .clock(clock.clone())
        .active_expiry(ActiveExpiry::Manual)
        .build();

    // Create: fails if the key exists.
    let version = store.create("session/alice", "token-1", Some(Duration::from_secs(30)))?;
    println!("created session/alice at version {version}");
    match store.create("session/alice", "token-2", None) {
        Err(Error::AlreadyExists { current_version }) => {
            println!("second create refused: already exists at version {current_version}")
        }
        other => println!("unexpected: {other:?}"),
    }

    // Read: the value is shared with the store, not copied.
    let entry = store.get("session/alice")?.expect("just created");
    println!(
        "get -> {:?}, version {}, ttl {:?}",
        String::from_utf8_lossy(entry.value()),
        entry.version(),
        entry.ttl()
    );

    // Update keeps the deadline unless told otherwise.
    store.update("session/alice", "token-3", TtlChange::Keep)?;
    clock.advance(10_000);
    let entry = store.get("session/alice")?.expect("still alive");
    println!("after 10 s the kept deadline has {:?} left", entry.ttl());

    // Let the deadline pass: the key is gone for every operation.
    clock.advance(20_001);
    println!("after 30 s: get -> {:?}", store.get("session/alice")?);
    println!(
        "update of an expired key -> {:?}",
        store.update("session/alice", "x", TtlChange::Keep)
    );

    // Persist removes a deadline; remove deletes the key.
    store.upsert(
        "config/mode",
        "fast",
        TtlChange::Set(Duration::from_secs(5)),
    )?;
    store.update("config/mode", "fast", TtlChange::Persist)?;
    clock.advance(60_000);
    let entry = store
        .get("config/mode")?
        .expect("persisted keys do not expire");
    println!("config/mode survived a minute: ttl {:?}", entry.ttl());
    let removal = store.remove("config/mode")?;
    println!(
        "removed config/mode at revision {removal}; len is now {}",
        store.len()
    );
    Ok(())
}
