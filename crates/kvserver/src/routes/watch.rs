//! `GET /v1/watch`: the change feed as Server-Sent Events.
//!
//! Each change is one event: `id:` is its revision, `event:` its kind and
//! `data:` a [`kvapi::WatchEvent`]. A client that reconnects with
//! `Last-Event-ID` (browsers' `EventSource` does it by itself) resumes
//! right after that revision; one that asks for a revision the history no
//! longer holds gets a 410 `compacted` naming the oldest it could ask for.
//! A quiet stream gets a keep-alive comment every so often; a client too
//! slow to keep up is cut off (the stream ends with a comment saying why)
//! and reconnects; a graceful shutdown ends every stream at once.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use kvapi::{WatchEvent, WatchKind, url};

use super::only;
use crate::app::AppState;
use crate::auth::Caller;
use crate::backend::{Change, ChangeStream, Watch};
use crate::error::{ApiError, invalid};
use crate::query::Params;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/watch")
            .route(web::get().to(watch))
            .route(web::head().to(watch_head))
            .default_service(only("GET, HEAD")),
    );
}

async fn watch(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (watch, from) = open(caller, &state, &request).await?;
    let stream = Feed::new(watch, &state, from);
    Ok(stream_response().streaming(futures_util::stream::unfold(stream, Feed::next_chunk)))
}

/// `HEAD /v1/watch`: what `GET` would answer (a 410 for a revision the
/// history no longer holds, say), without the stream.
async fn watch_head(
    caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // The watch is started (so a compacted `from` is a 410 here too) and
    // dropped at once.
    let _unread = open(caller, &state, &request).await?;
    Ok(stream_response().streaming(futures_util::stream::empty::<Result<Bytes, ApiError>>()))
}

/// The headers of a stream of events.
fn stream_response() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type(kvapi::EVENT_STREAM)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx-like proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"));
    response
}

/// Checks a watch request and starts the backend's watch: the changes and
/// the revision they follow (`None`: from now).
async fn open(
    caller: Caller,
    state: &AppState,
    request: &HttpRequest,
) -> Result<(Watch, Option<u64>), ApiError> {
    let mut query = Params::of(request, &[url::PREFIX, url::FROM])?;
    let prefix = query.take(url::PREFIX).unwrap_or_default();
    // Every key under the prefix may show up: reading all of them is needed.
    caller.require_listing(&prefix)?;
    let from = query
        .take(url::FROM)
        .map(|text| revision(&text, "from"))
        .transpose()?;
    // A reconnecting client resends the URL it started with: the last
    // event it saw is where it resumes, whatever `from` said.
    let last_seen = match request.headers().get(kvapi::LAST_EVENT_ID) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| invalid("Last-Event-ID must be a revision (a whole number)"))
                .and_then(|text| revision(text.trim(), "Last-Event-ID"))?,
        ),
    };
    let from = last_seen.or(from);
    let watch = state
        .backend()?
        .watch(&prefix, from)
        .await
        .map_err(|err| ApiError::from_backend(err, &prefix, StatusCode::CONFLICT))?;
    Ok((watch, from))
}

fn revision(text: &str, what: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        invalid(format!(
            "{what} must be a revision (a whole number), got {text:?}"
        ))
    })
}

/// One open stream: the backend's changes, the shutdown signal and the
/// keep-alive timer. Counted in `kv_watchers` while it lives.
struct Feed {
    changes: ChangeStream,
    stopping: tokio::sync::watch::Receiver<bool>,
    keepalive: tokio::time::Interval,
    state: web::Data<AppState>,
    /// The comment that opens the stream, until it is sent.
    greeting: Option<String>,
    done: bool,
}

/// What woke a stream.
enum Wake {
    Stopping,
    Change(Option<kvcore::Result<Change>>),
    KeepAlive,
}

impl Feed {
    fn new(watch: Watch, state: &web::Data<AppState>, from: Option<u64>) -> Feed {
        state.metrics.watchers.inc();
        let period = state.watch_keepalive.max(Duration::from_millis(10));
        let keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let greeting = match from {
            Some(from) => format!(": watching changes after revision {from}\n\n"),
            // And where "now" is, as an id without data: a client that loses
            // the stream before its first event resumes from there
            // (Last-Event-ID) instead of from a later now, missing nothing.
            None => format!(": watching changes from now\n\nid: {}\n\n", watch.after),
        };
        Feed {
            changes: watch.changes,
            stopping: state.stopping.subscribe(),
            keepalive,
            state: state.clone(),
            greeting: Some(greeting),
            done: false,
        }
    }

    /// The next piece of the stream, or `None` once it has ended.
    async fn next_chunk(mut self) -> Option<(Result<Bytes, actix_web::Error>, Feed)> {
        if self.done {
            return None;
        }
        // Sent at once, so that the client sees the response start even
        // when nothing changes for a while.
        if let Some(greeting) = self.greeting.take() {
            return Some((Ok(Bytes::from(greeting)), self));
        }
        let wake = tokio::select! {
            biased;
            _ = self.stopping.wait_for(|stopping| *stopping) => Wake::Stopping,
            change = self.changes.next() => Wake::Change(change),
            _ = self.keepalive.tick() => Wake::KeepAlive,
        };
        let chunk = match wake {
            Wake::Stopping => {
                self.done = true;
                ": the server is shutting down; reconnect with Last-Event-ID\n\n".to_owned()
            }
            Wake::KeepAlive => ": keep-alive\n\n".to_owned(),
            Wake::Change(None) => return None,
            Wake::Change(Some(Ok(change))) => {
                self.state.metrics.watch_events.inc();
                self.keepalive.reset();
                event_text(&change)
            }
            Wake::Change(Some(Err(err))) => {
                self.done = true;
                if matches!(err, kvcore::Error::WatcherCutOff { .. }) {
                    self.state.metrics.watchers_cut_off.inc();
                }
                // A comment: the stream ends, the client reconnects with the
                // last event's id and misses nothing.
                format!(": {err}; reconnect with Last-Event-ID\n\n")
            }
        };
        Some((Ok(Bytes::from(chunk)), self))
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.state.metrics.watchers.dec();
    }
}

/// One change as an SSE event. The JSON is on one line: serde_json writes
/// no newline, and escapes any in keys and values.
fn event_text(change: &Change) -> String {
    let kind = match change.kind {
        kvcore::EventKind::Put => WatchKind::Put,
        kvcore::EventKind::Delete => WatchKind::Delete,
        kvcore::EventKind::Expire => WatchKind::Expire,
    };
    let event = WatchEvent::new(
        change.revision,
        &change.key,
        kind,
        change.value.as_deref(),
        change.ttl,
    );
    // Serialising plain data with string keys cannot fail.
    let data = serde_json::to_string(&event).unwrap_or_default();
    format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        change.revision,
        kind.as_str()
    )
}
