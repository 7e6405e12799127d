//! The change feed: every change as an [`Event`] in revision order, a
//! bounded history of recent events, and the [`Watcher`]s that follow it.
//!
//! Writers take their revision under their own shard's lock, so two writes
//! on two shards can reach the history in the other order. The history
//! therefore keeps a *complete-up-to* watermark: an event waits in `early`
//! until every revision before it has been published (as an event, or as a
//! hole for a revision that produced none, such as a write the log refused),
//! and watchers only ever see events at or below the watermark. That is what
//! makes the feed gap-free and in order.
//!
//! Writers never wait for watchers. A writer's whole cost is one mutex
//! acquisition to put its event in place (and one allocation for the
//! event's copy of the key and value, made outside every shard lock).
//! Handing events to watchers is the job of one background thread, the
//! dispatcher, which copies them (a reference count each) into every
//! watcher's bounded buffer. A watcher whose buffer is full is cut off
//! ([`Error::WatcherCutOff`]) and can watch again from the last revision it
//! saw.
//!
//! A store that keeps no history and was never watched pays one atomic load
//! per write for all of this: events are made only once the feed is
//! *active* (a history is configured, or a first watcher came).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::entry::{NO_DEADLINE, Record};
use crate::error::{Error, Result};
use crate::memory::{self, Memory};

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or replaced: the event carries the new value.
    Put,
    /// The key was removed.
    Delete,
    /// The store noticed that the key's deadline had passed and removed it.
    Expire,
}

impl EventKind {
    /// The name used on the wire: `put`, `delete` or `expire`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Put => "put",
            EventKind::Delete => "delete",
            EventKind::Expire => "expire",
        }
    }
}

/// One change to one key, at one revision. Cloning bumps a reference count.
#[derive(Clone)]
pub struct Event {
    /// Key and value (empty unless a put) with the revision as its version.
    record: Record,
    kind: EventKind,
    /// Time left before the key expires, as of a put; `None` otherwise.
    ttl_ms: Option<u64>,
}

impl Event {
    pub(crate) fn put(
        revision: u64,
        key: &str,
        value: &[u8],
        deadline_ms: u64,
        ttl: Option<Duration>,
    ) -> Event {
        let record = Record::new(key, value);
        record.stamp(revision, deadline_ms);
        Event {
            record,
            kind: EventKind::Put,
            ttl_ms: ttl.map(|ttl| ttl.as_millis() as u64),
        }
    }

    pub(crate) fn gone(revision: u64, key: &str, kind: EventKind) -> Event {
        let record = Record::new(key, b"");
        record.stamp(revision, NO_DEADLINE);
        Event {
            record,
            kind,
            ttl_ms: None,
        }
    }

    /// The revision of this change.
    pub fn revision(&self) -> u64 {
        self.record.version()
    }

    /// The key.
    pub fn key(&self) -> &str {
        // Events are only ever built from `&str` keys.
        std::str::from_utf8(self.record.key()).unwrap_or_default()
    }

    /// What happened.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// The new value of a put; `None` for a delete or an expiry.
    pub fn value(&self) -> Option<&[u8]> {
        (self.kind == EventKind::Put).then(|| self.record.value())
    }

    /// The put's absolute deadline in milliseconds since the Unix epoch, if
    /// the key has one.
    pub fn deadline_ms(&self) -> Option<u64> {
        match self.record.deadline_ms() {
            NO_DEADLINE => None,
            deadline => Some(deadline),
        }
    }

    /// Time left before the key expires, as of the put; `None` without a
    /// deadline (and for deletes and expiries).
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }

    /// Bytes this event holds while the history keeps it: its record's
    /// allocation and its slot. Counted against the history's byte bound
    /// and in the store's memory (see [`memory::event_bytes`]).
    fn cost(&self) -> usize {
        memory::event_bytes(self.record.key().len() + self.record.value().len()) as usize
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("revision", &self.revision())
            .field("key", &self.key())
            .field("kind", &self.kind)
            .field("value_len", &self.value().map(<[u8]>::len))
            .field("ttl", &self.ttl())
            .finish()
    }
}

/// How much history a store keeps, and how far a watcher may fall behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WatchConfig {
    /// Most events kept for watches that start in the past.
    pub(crate) history_events: usize,
    /// Most bytes of events kept (keys, values and [`EVENT_OVERHEAD`] each).
    pub(crate) history_bytes: usize,
    /// Events a watcher's buffer holds before the watcher is cut off.
    pub(crate) buffer: usize,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            history_events: 0,
            history_bytes: 64 << 20,
            buffer: 1024,
        }
    }
}

/// The history and the registered watchers of one store.
pub(crate) struct Feed {
    /// Whether writers make events (see the module docs). Read with the
    /// revision counter's ordering: a writer that took its revision after a
    /// watcher started sees it set.
    active: AtomicBool,
    config: WatchConfig,
    state: Mutex<State>,
    /// The watchers, grouped by prefix, so that the dispatcher matches an
    /// event against each prefix once however many watchers share it (a
    /// thousand idle watchers of one prefix cost one comparison an event).
    /// Writers never take this lock; the dispatcher holds it for a whole
    /// pass, and a new watcher takes it before the history's lock, so that
    /// it joins between two passes.
    registry: Mutex<BTreeMap<Box<str>, Vec<Arc<Shared>>>>,
    /// Every event up to this revision has been handed to every live
    /// watcher that it matches (set at the end of each pass): a watcher
    /// with an empty buffer has seen everything up to here.
    passed: Arc<AtomicU64>,
    /// Wakes the dispatcher; `None` until the first watcher.
    dispatcher: Mutex<Option<Arc<crate::background::Signal>>>,
    /// Set while a dispatch is requested and not yet begun, so that a burst
    /// of writes wakes the dispatcher once.
    dispatch_requested: AtomicBool,
}

struct State {
    /// Complete events, oldest first, all at or below `complete`.
    kept: VecDeque<Event>,
    /// Events (or holes, `None`) above `complete + 1`, waiting for the
    /// revisions before them.
    early: BTreeMap<u64, Option<Event>>,
    /// Every revision at or below this one is published.
    complete: u64,
    /// Events at or below this revision are no longer kept: a watch must
    /// start here or later.
    floor: u64,
    /// The dispatcher has handed every event at or below this revision to
    /// every watcher; only those may leave the history.
    delivered: u64,
    kept_bytes: usize,
    /// Watchers registered (in `Feed::registry`).
    watching: usize,
    closed: bool,
}

impl Feed {
    /// A feed whose history starts after `revision`, holding `events`
    /// (recovered from a log, all above `floor`) in revision order.
    pub(crate) fn new(config: WatchConfig, revision: u64, floor: u64, events: Vec<Event>) -> Feed {
        let active = config.history_events > 0;
        let mut state = State {
            kept: VecDeque::new(),
            early: BTreeMap::new(),
            complete: revision,
            floor: if active { floor } else { revision },
            delivered: revision,
            kept_bytes: 0,
            watching: 0,
            closed: false,
        };
        if active {
            // Counted on a scratch counter: the store sets its own from
            // its keys and [`Feed::kept_bytes`] once it is assembled.
            let scratch = Memory::new(None, Default::default());
            for event in events {
                state.keep(event, &scratch);
            }
            state.trim(&config, &scratch);
        }
        Feed {
            active: AtomicBool::new(active),
            config,
            state: Mutex::new(state),
            registry: Mutex::new(BTreeMap::new()),
            passed: Arc::new(AtomicU64::new(revision)),
            dispatcher: Mutex::new(None),
            dispatch_requested: AtomicBool::new(false),
        }
    }

    /// Whether changes must be published. Call after taking the revision.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// Publishes what revision `revision` became: an event, or `None` for a
    /// revision that changed nothing. The events the history keeps are
    /// counted in `memory`, and give way to the store's keys when it is
    /// over its bound.
    pub(crate) fn publish(&self, revision: u64, event: Option<Event>, memory: &Memory) {
        let mut state = self.state.lock();
        if revision <= state.complete {
            // Taken before the feed became active (see `activate`).
            return;
        }
        let before = state.complete;
        let state = &mut *state;
        if revision == state.complete + 1 {
            // In order, the common case: no detour through `early`.
            state.complete = revision;
            if let Some(event) = event {
                state.keep(event, memory);
            }
        } else {
            state.early.insert(revision, event);
        }
        while let Some(entry) = state.early.first_entry() {
            if *entry.key() != state.complete + 1 {
                break;
            }
            let (revision, event) = entry.remove_entry();
            state.complete = revision;
            if let Some(event) = event {
                state.keep(event, memory);
            }
        }
        if state.complete == before {
            return;
        }
        if state.watching == 0 {
            state.delivered = state.complete;
            self.passed.store(state.complete, Ordering::Release);
            state.trim(&self.config, memory);
            return;
        }
        self.request_dispatch();
    }

    /// Drops the oldest events already handed to watchers until `needed`
    /// more bytes fit under the store's bound, or none is left to drop: a
    /// write that does not fit takes the history's room before any key's.
    /// Events not yet handed to watchers cannot go: if they are in the
    /// way, this thread hands them over first (the dispatcher's pass).
    pub(crate) fn shed(&self, memory: &Memory, needed: u64) {
        let undelivered = {
            let mut state = self.state.lock();
            state.shed(memory, needed);
            !memory.fits(needed) && state.delivered < state.complete
        };
        if undelivered {
            self.dispatch(memory);
            self.state.lock().shed(memory, needed);
        }
    }

    /// Bytes the history holds (counted in the store's memory).
    pub(crate) fn kept_bytes(&self) -> u64 {
        self.state.lock().kept_bytes as u64
    }

    fn request_dispatch(&self) {
        if !self.dispatch_requested.swap(true, Ordering::AcqRel)
            && let Some(signal) = &*self.dispatcher.lock()
        {
            signal.wake();
        }
    }

    /// Registers a watcher of `prefix` from after revision `from` (`None`:
    /// from the latest complete revision). `current` reads the store's
    /// revision: the latest a watch may start from, and where a feed that
    /// becomes active now begins.
    pub(crate) fn watch(
        &self,
        prefix: &str,
        from: Option<u64>,
        current: impl Fn() -> u64,
    ) -> Result<Arc<Shared>> {
        // The registry first (see its docs), then the history.
        let mut registry = self.registry.lock();
        let mut state = self.state.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        if !self.active.load(Ordering::SeqCst) {
            // Becoming active: every revision taken before the flag is set
            // was taken by a writer that will not publish it (it read the
            // flag unset), and every later one will. `current` runs after
            // the store: anything it counts is settled.
            self.active.store(true, Ordering::SeqCst);
            let now = current();
            state.complete = now;
            state.floor = now;
            state.delivered = now;
            self.passed.store(now, Ordering::Release);
            state.early.clear();
        }
        let from = from.unwrap_or(state.complete);
        // Before the oldest revision kept, or past the latest one taken: a
        // revision seen before a restart that lost it, whose number the
        // store gives to other changes.
        if from < state.floor || from > current() {
            return Err(Error::Compacted {
                requested: from,
                oldest: state.floor,
            });
        }
        let start = from.max(state.delivered);
        let backlog: VecDeque<Event> = state
            .kept
            .iter()
            .filter(|e| e.revision() > from && e.revision() <= start)
            .filter(|e| e.key().starts_with(prefix))
            .cloned()
            .collect();
        let shared = Arc::new(Shared {
            prefix: prefix.into(),
            capacity: self.config.buffer.max(1),
            queue: Mutex::new(Queue {
                events: backlog,
                position: start,
                seen: from,
                end: None,
                dropped: false,
            }),
            ready: Condvar::new(),
            notify: Mutex::new(None),
            live: AtomicBool::new(true),
            passed: self.passed.clone(),
        });
        state.watching += 1;
        registry
            .entry(prefix.into())
            .or_default()
            .push(shared.clone());
        let behind = state.complete > state.delivered;
        drop(state);
        drop(registry);
        if behind {
            self.request_dispatch();
        }
        Ok(shared)
    }

    /// Starts the dispatcher with `spawn` unless it runs already.
    pub(crate) fn ensure_dispatcher(&self, spawn: impl FnOnce() -> Arc<crate::background::Signal>) {
        let mut slot = self.dispatcher.lock();
        if slot.is_none() {
            *slot = Some(spawn());
            drop(slot);
            self.dispatch_requested.store(false, Ordering::Release);
            self.request_dispatch();
        }
    }

    /// The dispatcher's duty: hands every complete event not yet delivered
    /// to the watchers whose prefix it matches, cutting off those whose
    /// buffer is full.
    pub(crate) fn dispatch(&self, memory: &Memory) {
        self.dispatch_requested.store(false, Ordering::Release);
        let mut registry = self.registry.lock();
        let (events, upto) = {
            let mut state = self.state.lock();
            let from = state
                .kept
                .partition_point(|e| e.revision() <= state.delivered);
            let events: Vec<Event> = state.kept.range(from..).cloned().collect();
            // Counted as delivered now: a watcher that registers after this
            // pass takes these from the history itself, and the events stay
            // in hand here even if the history drops them meanwhile.
            state.delivered = state.complete;
            (events, state.complete)
        };
        // Without the history's lock: writers go on publishing meanwhile.
        let mut gone = 0;
        for (prefix, watchers) in registry.iter_mut() {
            let matching: Vec<&Event> = events
                .iter()
                .filter(|e| e.key().starts_with(&**prefix))
                .collect();
            if !matching.is_empty() {
                for watcher in watchers.iter() {
                    watcher.deliver(&matching);
                }
            }
            let before = watchers.len();
            watchers.retain(|w| w.live.load(Ordering::Acquire));
            gone += before - watchers.len();
        }
        registry.retain(|_, watchers| !watchers.is_empty());
        self.passed.store(upto, Ordering::Release);
        let mut state = self.state.lock();
        state.watching -= gone;
        if state.watching == 0 {
            state.delivered = state.complete;
        }
        state.trim(&self.config, memory);
        let behind = state.complete > state.delivered;
        drop(state);
        drop(registry);
        if behind {
            self.request_dispatch();
        }
    }

    /// Ends every watcher with [`Error::Closed`] (after the events they
    /// already hold).
    pub(crate) fn close(&self) {
        let registry = std::mem::take(&mut *self.registry.lock());
        {
            let mut state = self.state.lock();
            state.closed = true;
            state.watching = 0;
        }
        for watcher in registry.into_values().flatten() {
            watcher.end(Error::Closed);
        }
    }

    /// The oldest revision a watch may start from, and the latest complete
    /// one.
    pub(crate) fn bounds(&self) -> (u64, u64) {
        let state = self.state.lock();
        (state.floor, state.complete)
    }
}

impl State {
    /// Keeps a complete event, counting its bytes in `memory`.
    fn keep(&mut self, event: Event, memory: &Memory) {
        let cost = event.cost();
        self.kept_bytes += cost;
        memory.charge(cost as u64);
        self.kept.push_back(event);
    }

    /// Drops the oldest delivered events while the history is over a bound
    /// of its own, or the store over its memory bound.
    fn trim(&mut self, config: &WatchConfig, memory: &Memory) {
        while (self.kept.len() > config.history_events
            || self.kept_bytes > config.history_bytes
            || !memory.fits(0))
            && self.drop_oldest(memory)
        {}
        self.note_empty();
    }

    /// Drops the oldest delivered events until `needed` more bytes fit
    /// under the store's bound.
    fn shed(&mut self, memory: &Memory, needed: u64) {
        while !memory.fits(needed) && self.drop_oldest(memory) {}
        self.note_empty();
    }

    /// Drops the oldest event if it was delivered; false if it was not (or
    /// nothing is kept).
    fn drop_oldest(&mut self, memory: &Memory) -> bool {
        match self.kept.front() {
            Some(oldest) if oldest.revision() <= self.delivered => {
                let cost = oldest.cost();
                self.floor = oldest.revision();
                self.kept_bytes -= cost;
                memory.release(cost as u64);
                self.kept.pop_front();
                true
            }
            _ => false,
        }
    }

    fn note_empty(&mut self) {
        if self.kept.is_empty() {
            // Nothing kept: every revision up to the last delivered one is
            // gone, holes included.
            self.floor = self.floor.max(self.delivered.min(self.complete));
        }
    }
}

/// What the dispatcher and a [`Watcher`] share.
pub(crate) struct Shared {
    prefix: Box<str>,
    capacity: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
    notify: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// Still fed: cleared when it ends or its [`Watcher`] is dropped, so
    /// that the dispatcher forgets it.
    live: AtomicBool,
    /// The feed's `passed`.
    passed: Arc<AtomicU64>,
}

struct Queue {
    events: VecDeque<Event>,
    /// Every event up to this revision is in `events` or was taken.
    position: u64,
    /// Every event up to this revision was taken by the watcher's owner.
    seen: u64,
    /// Why the watcher ends once `events` is drained.
    end: Option<Error>,
    /// The [`Watcher`] was dropped.
    dropped: bool,
}

impl Shared {
    /// Appends `events` (all matching this watcher's prefix, in revision
    /// order, some perhaps already held) or cuts the watcher off when its
    /// buffer is full.
    fn deliver(&self, events: &[&Event]) {
        let mut queue = self.queue.lock();
        if queue.end.is_some() || queue.dropped {
            return;
        }
        let before = queue.events.len();
        let mut cut_off = false;
        for event in events {
            if event.revision() <= queue.position {
                continue;
            }
            if queue.events.len() >= self.capacity {
                cut_off = true;
                break;
            }
            queue.events.push_back((*event).clone());
            queue.position = event.revision();
        }
        if cut_off {
            let resume_from = queue.position;
            queue.end = Some(Error::WatcherCutOff {
                resume_from,
                buffer: self.capacity,
            });
            self.live.store(false, Ordering::Release);
        }
        let changed = cut_off || queue.events.len() > before;
        drop(queue);
        if changed {
            self.wake();
        }
    }

    fn end(&self, err: Error) {
        let mut queue = self.queue.lock();
        if queue.end.is_none() {
            queue.end = Some(err);
        }
        self.live.store(false, Ordering::Release);
        drop(queue);
        self.wake();
    }

    fn wake(&self) {
        self.ready.notify_all();
        let notify = self.notify.lock().clone();
        if let Some(notify) = notify {
            notify();
        }
    }
}

/// Follows the changes to the keys under a prefix, in revision order, from
/// [`Store::watch`](crate::Store::watch).
///
/// A watcher buffers what it has not taken yet, up to the store's watch
/// buffer ([`StoreBuilder::watch_buffer`](crate::StoreBuilder::watch_buffer)).
/// When the buffer is full it is cut off: it still returns every event it
/// holds, then [`Error::WatcherCutOff`], whose `resume_from` is the revision
/// to watch again from, so that nothing is missed or repeated. It ends with
/// [`Error::Closed`] when the store is closed. Writers never wait for it.
///
/// As an iterator it yields events until the first error, which it yields
/// last.
pub struct Watcher {
    shared: Arc<Shared>,
    finished: bool,
}

impl Watcher {
    pub(crate) fn new(shared: Arc<Shared>) -> Watcher {
        Watcher {
            shared,
            finished: false,
        }
    }

    /// The prefix this watcher follows.
    pub fn prefix(&self) -> &str {
        &self.shared.prefix
    }

    /// The next event, waiting as long as it takes.
    pub fn recv(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.next_before(None)? {
                return Ok(event);
            }
        }
    }

    /// The next event, waiting at most `timeout`; `Ok(None)` if none came.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>> {
        self.next_before(Some(Instant::now() + timeout))
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Event>> {
        self.next_before(Some(Instant::now()))
    }

    /// Every event for this prefix up to this revision has been returned:
    /// watching again from here misses nothing and repeats nothing.
    pub fn progress(&self) -> u64 {
        let queue = self.shared.queue.lock();
        match queue.events.is_empty() && queue.end.is_none() {
            // Nothing held and still fed: everything the dispatcher has
            // passed (this watcher's buffer took whatever of it matched).
            true => queue
                .seen
                .max(queue.position)
                .max(self.shared.passed.load(Ordering::Acquire)),
            false => queue.seen,
        }
    }

    /// Calls `notify` whenever an event arrives in the buffer, or the
    /// watcher ends, so that an event loop can poll
    /// [`try_recv`](Watcher::try_recv) without a thread per watcher. It is
    /// called on the store's dispatcher thread: it must be quick and must
    /// not call back into this watcher. It is also called once now if
    /// something is already waiting.
    pub fn on_ready(&self, notify: impl Fn() + Send + Sync + 'static) {
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(notify);
        *self.shared.notify.lock() = Some(notify.clone());
        let queue = self.shared.queue.lock();
        let waiting = !queue.events.is_empty() || queue.end.is_some();
        drop(queue);
        if waiting {
            notify();
        }
    }

    fn next_before(&mut self, deadline: Option<Instant>) -> Result<Option<Event>> {
        let mut queue = self.shared.queue.lock();
        loop {
            if let Some(event) = queue.events.pop_front() {
                queue.seen = match queue.events.is_empty() {
                    true => queue.position,
                    false => event.revision(),
                };
                return Ok(Some(event));
            }
            if let Some(err) = &queue.end {
                self.finished = true;
                return Err(err.clone());
            }
            match deadline {
                None => self.shared.ready.wait(&mut queue),
                Some(deadline) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    self.shared.ready.wait_until(&mut queue, deadline);
                }
            }
        }
    }
}

impl Iterator for Watcher {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        if self.finished {
            return None;
        }
        Some(self.recv())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // The dispatcher forgets it on its next pass.
        self.shared.queue.lock().dropped = true;
        self.shared.live.store(false, Ordering::Release);
        self.shared.notify.lock().take();
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.prefix())
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
