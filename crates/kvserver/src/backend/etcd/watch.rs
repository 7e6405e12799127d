//! `/v1/watch` on etcd: an etcd watch on the key range from a revision.
//!
//! etcd's revisions are our versions, so a watch from revision R is an etcd
//! watch starting at R + 1, and `compacted` is etcd's own compaction. A put
//! event carries the value out of its envelope (with the time its deadline
//! leaves); a delete whose previous value was past its deadline is an
//! expiry (a lease reclaiming the key, or a kvserver deleting an expired key
//! it met), any other delete a delete.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions, WatchResponse, WatchStream};
use kvcore::{Clock, EventKind};

use super::{EtcdBackend, classify, envelope, prefix_end, timed_out};
use crate::backend::{BackendError, BackendResult, Change, ChangeStream, Watch};

/// Starts a watch of the keys under `prefix` after revision `from` (`None`:
/// from now). Waits for etcd to confirm it, so that a revision etcd no
/// longer holds is an error here (our 410), not a stream that ends at once.
pub(super) async fn start(
    backend: &EtcdBackend,
    prefix: &str,
    from: Option<u64>,
) -> BackendResult<Watch> {
    let full = backend.full_key(prefix);
    let key = if full.is_empty() {
        vec![0]
    } else {
        full.clone()
    };
    // Fragments: etcd sends the history a watch catches up on in answers of
    // up to 1,000 revisions, which with large values would be over what
    // kvserver reads at once; fragmented, each answer stays near etcd's
    // request limit (events are handled one by one, so where an answer
    // ends does not matter).
    let mut options = WatchOptions::new()
        .with_range(prefix_end(&full))
        .with_prev_key()
        .with_fragment();
    if let Some(from) = from {
        options = options.with_start_revision(revision_after(from));
    }
    let mut stream = backend
        .bounded(true, |member| {
            let mut client = member.watch.clone();
            let (key, options) = (key.clone(), options.clone());
            async move { client.watch(key, Some(options)).await }
        })
        .await?;
    let first = match tokio::time::timeout(backend.timeout, stream.message()).await {
        Ok(Ok(Some(first))) => first,
        Ok(Ok(None)) => {
            return Err(BackendError::Unavailable(format!(
                "etcd ({}) ended the watch before confirming it",
                backend.endpoints
            )));
        }
        Ok(Err(err)) => return Err(classify(err, &backend.endpoints)),
        Err(_) => return Err(timed_out(&backend.endpoints, backend.timeout)),
    };
    if first.canceled() {
        if first.compact_revision() > 0 {
            return Err(compacted(from.unwrap_or(0), &first).into());
        }
        return Err(BackendError::Unavailable(format!(
            "etcd refused the watch: {}",
            first.cancel_reason()
        )));
    }
    // etcd confirms a watch from a compacted revision first and cancels it
    // in the next response: when a probe says `from` is compacted, that
    // next response is awaited here so that the client gets its 410.
    let mut second = None;
    if let Some(from) = from
        && first.created()
        && compacted_after(backend, &key, from).await
    {
        match tokio::time::timeout(backend.timeout, stream.message()).await {
            Ok(Ok(Some(next))) if next.canceled() && next.compact_revision() > 0 => {
                return Err(compacted(from, &next).into());
            }
            Ok(Ok(Some(next))) => second = Some(next),
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {}
        }
    }
    let mut changes = Changes {
        stream,
        pending: VecDeque::new(),
        prefix_len: backend.prefix.len(),
        clock: backend.clock.clone(),
        last: from.unwrap_or(0),
        done: false,
    };
    // From now, etcd sends what comes after the revision in the header of
    // its confirmation.
    let after = from.unwrap_or_else(|| {
        first
            .header()
            .map_or(0, |header| u64::try_from(header.revision()).unwrap_or(0))
    });
    changes.take(&first);
    if let Some(second) = &second {
        changes.take(second);
    }
    let changes: ChangeStream = Box::pin(futures_util::stream::unfold(
        changes,
        |mut changes| async move {
            let next = changes.next().await?;
            Some((next, changes))
        },
    ));
    Ok(Watch { changes, after })
}

/// The state of one watch: etcd's stream and the events of its last
/// response not handed out yet.
struct Changes {
    stream: WatchStream,
    pending: VecDeque<Change>,
    /// Bytes of `--etcd-prefix` in front of every key.
    prefix_len: usize,
    clock: Arc<dyn Clock>,
    /// The revision of the last change taken.
    last: u64,
    /// Set once the stream ended (after its one error).
    done: bool,
}

impl Changes {
    async fn next(&mut self) -> Option<kvcore::Result<Change>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(Ok(change));
            }
            if self.done {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(response)) if response.canceled() => {
                    self.done = true;
                    // Compacted past what this watcher still had to see, or
                    // ended by etcd: either way the client watches again
                    // from its last revision.
                    return Some(Err(match response.compact_revision() {
                        0 => kvcore::Error::Closed,
                        _ => compacted(self.last, &response),
                    }));
                }
                Ok(Some(response)) => self.take(&response),
                // The connection to the member was lost: the stream ends,
                // and the client resumes from its last revision.
                Ok(None) | Err(_) => {
                    self.done = true;
                    return Some(Err(kvcore::Error::Closed));
                }
            }
        }
    }

    /// Queues the events of `response` as changes.
    fn take(&mut self, response: &WatchResponse) {
        let now = self.clock.now_ms();
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let Some(key) = kv
                .key()
                .get(self.prefix_len..)
                .and_then(|key| std::str::from_utf8(key).ok())
            else {
                continue;
            };
            let revision = kv.mod_revision() as u64;
            let change = match event.event_type() {
                EventType::Put => {
                    let Some((deadline, value)) = envelope::open(kv.value().to_vec()) else {
                        log::warn!(
                            "watch: etcd key {key:?} does not hold a kvserver value; its change at revision {revision} is left out"
                        );
                        continue;
                    };
                    Change {
                        revision,
                        key: key.to_owned(),
                        kind: EventKind::Put,
                        value: Some(value),
                        ttl: deadline.map(|d| Duration::from_millis(d.saturating_sub(now))),
                    }
                }
                EventType::Delete => {
                    let deadline = event
                        .prev_kv()
                        .and_then(|prev| envelope::open(prev.value().to_vec()))
                        .and_then(|(deadline, _)| deadline);
                    let kind = match deadline {
                        Some(deadline) if deadline < now => EventKind::Expire,
                        _ => EventKind::Delete,
                    };
                    Change {
                        revision,
                        key: key.to_owned(),
                        kind,
                        value: None,
                        ttl: None,
                    }
                }
            };
            self.last = revision;
            self.pending.push_back(change);
        }
    }
}

/// Whether etcd has compacted away the revision after `from` (a read at that
/// revision says so). A revision in the future, or a probe that fails for
/// another reason, counts as not compacted: the watch itself tells then.
async fn compacted_after(backend: &EtcdBackend, key: &[u8], from: u64) -> bool {
    let mut kv = backend.member().kv.clone();
    let options = GetOptions::new()
        .with_revision(revision_after(from))
        .with_count_only();
    let probe = kv.get(key.to_vec(), Some(options));
    matches!(
        tokio::time::timeout(backend.timeout, probe).await,
        Ok(Err(err)) if err.to_string().contains("compacted")
    )
}

/// The etcd revision right after `from`. etcd's revisions are i64: one
/// past the largest is cut to it, which etcd never reaches either (cast, it
/// would be negative, which etcd reads as compacted away).
fn revision_after(from: u64) -> i64 {
    i64::try_from(from.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Our `compacted` for an etcd response that carries its compaction
/// revision: a watch can start after the revision before it.
fn compacted(requested: u64, response: &WatchResponse) -> kvcore::Error {
    kvcore::Error::Compacted {
        requested,
        oldest: (response.compact_revision() as u64).saturating_sub(1),
    }
}
