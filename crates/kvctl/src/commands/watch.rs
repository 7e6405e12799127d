//! `watch`: the changes under a prefix as they happen, one line each, until
//! Ctrl-C. A dropped stream is reopened from the last revision seen, so no
//! change is missed or shown twice.

use std::io::BufReader;
use std::time::Duration;

use kvapi::{WatchEvent, WatchKind};

use crate::cli::WatchArgs;
use crate::client::Client;
use crate::duration;
use crate::error::{Error, with_causes};
use crate::output::{Format, Output, shown_key};
use crate::sse::Reader;

/// How long kvctl waits before reopening a dropped stream, at first and at
/// most (it doubles in between while the server stays away).
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MOST: Duration = Duration::from_secs(5);

pub fn watch(client: &Client, args: WatchArgs, out: &mut Output) -> Result<(), Error> {
    exit_on_interrupt();
    let mut last = args.from;
    let mut retry = RETRY_FIRST;
    let mut connected_once = false;
    loop {
        let response = match client.watch(&args.prefix, last) {
            Ok(response) => response,
            // Reaching the server is retried once it was reached before: it
            // may be restarting (and answer 503 while it recovers). Any other
            // answer (401, 410 compacted, ...) is final.
            Err(err) if connected_once && is_passing(&err) => {
                eprintln!("kvctl: {err}; retrying in {}", duration::format(retry));
                std::thread::sleep(retry);
                retry = (retry * 2).min(RETRY_MOST);
                continue;
            }
            Err(err) => return Err(err),
        };
        connected_once = true;
        retry = RETRY_FIRST;
        let mut reader = Reader::new(BufReader::new(response));
        let ended = loop {
            match reader.next_message() {
                Ok(Some(message)) => {
                    if let Some(data) = &message.data {
                        let event: WatchEvent<'_> = serde_json::from_str(data).map_err(|err| {
                            client.unexpected(format!(
                                "a watch event is not the JSON kvctl expects ({err})"
                            ))
                        })?;
                        show(&event, out)?;
                        out.flush()?;
                    }
                    // An id without data moves the resume point too.
                    if let Some(id) = message.id.and_then(|id| id.parse().ok()) {
                        last = Some(id);
                    }
                }
                Ok(None) => break "the server ended the stream".to_owned(),
                // With its causes: reqwest says "error decoding response
                // body" for a read that timed out, and only a cause says so.
                Err(err) => break format!("the stream broke ({})", with_causes(&err)),
            }
        };
        let from = match last {
            Some(revision) => format!("after revision {revision}"),
            None => "from now".to_owned(),
        };
        eprintln!("kvctl: {ended}; watching again {from}");
    }
}

/// Whether `err` is one a restarting server gives for a while.
fn is_passing(err: &Error) -> bool {
    match err {
        Error::Unreachable { .. } | Error::Timeout { .. } => true,
        Error::Server { status, .. } => status.starts_with("503"),
        _ => false,
    }
}

fn show(event: &WatchEvent<'_>, out: &mut Output) -> Result<(), Error> {
    match out.format() {
        Format::Json => out.json(event),
        Format::Text => {
            let key = shown_key(&event.key);
            let value = match (&event.value, event.encoding) {
                (Some(text), None) => format!(" = {text:?}"),
                (Some(_), Some(_)) => match event.value_bytes() {
                    Some(Ok(bytes)) => format!(" = <{} bytes, not UTF-8>", bytes.len()),
                    _ => " = <binary>".to_owned(),
                },
                (None, _) => String::new(),
            };
            let expiry = match event.ttl() {
                Some(ttl) => format!("  expires in {}", duration::format(ttl)),
                None => String::new(),
            };
            let kind = match event.kind {
                WatchKind::Put => "put",
                WatchKind::Delete => "delete",
                WatchKind::Expire => "expire",
            };
            out.line(format_args!(
                "{} {kind:<6} {key}{value}{expiry}",
                event.revision
            ))
        }
    }
}

/// Ctrl-C (SIGINT) ends a watch with exit 0: it is how a watch is meant to
/// stop. Every event is flushed as it is printed, so nothing is lost. The
/// handler is in place before this returns.
fn exit_on_interrupt() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(mut interrupt) = runtime.block_on(async { signal(SignalKind::interrupt()) }) else {
        return;
    };
    std::thread::spawn(move || {
        runtime.block_on(interrupt.recv());
        std::process::exit(0);
    });
}
