//! The store's background threads (the reclaimer, the log worker, the sync
//! threads): how one is started, woken early, and stopped.
//!
//! A thread holds the store strongly for its whole life. The store's last
//! handle stops and joins them all ([`Threads::stop_and_join`]) before the
//! store goes away, so dropping a store never waits for a thread to notice
//! on its next tick, and no thread ever drops the store itself.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::store::Inner;

/// Wakes a background thread early, or stops it.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    state: Mutex<SignalState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct SignalState {
    stop: bool,
    wake: bool,
}

impl Signal {
    /// Waits up to `tick` or until woken; false once the thread must stop.
    pub(crate) fn wait(&self, tick: Duration) -> bool {
        let mut state = self.state.lock();
        if !state.stop && !state.wake {
            self.changed.wait_for(&mut state, tick);
        }
        state.wake = false;
        !state.stop
    }

    /// Runs the thread's duty now rather than at its next tick.
    pub(crate) fn wake(&self) {
        let mut state = self.state.lock();
        if !state.wake {
            state.wake = true;
            self.changed.notify_one();
        }
    }

    /// Tells the thread to stop after its current duty.
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
    }
}

/// The running background threads of one store.
#[derive(Debug, Default)]
pub(crate) struct Threads {
    running: Mutex<Vec<(Arc<Signal>, JoinHandle<()>)>>,
}

impl Threads {
    /// Starts a thread named `name` that runs `duty` on the store every
    /// `tick` (or when its signal wakes it) until it is stopped. Returns the
    /// signal that wakes it. If the thread cannot be spawned the store still
    /// works; each caller says what falls back.
    pub(crate) fn spawn_periodic(
        &self,
        name: &str,
        tick: Duration,
        store: Arc<Inner>,
        duty: impl Fn(&Inner) + Send + 'static,
    ) -> Arc<Signal> {
        let signal = Arc::new(Signal::default());
        let theirs = signal.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while theirs.wait(tick) {
                    duty(&store);
                }
            });
        if let Ok(handle) = spawned {
            self.running.lock().push((signal.clone(), handle));
        }
        signal
    }

    /// Keeps a thread started elsewhere, stopped by `stop` and joined with
    /// the others.
    pub(crate) fn adopt(&self, signal: Arc<Signal>, handle: JoinHandle<()>) {
        self.running.lock().push((signal, handle));
    }

    /// Stops every thread and waits for each to finish its current duty.
    pub(crate) fn stop_and_join(&self) {
        let running = std::mem::take(&mut *self.running.lock());
        for (signal, _) in &running {
            signal.stop();
        }
        for (_, handle) in running {
            // A duty that panicked has nothing more to stop.
            let _ = handle.join();
        }
    }
}
