//! The commands about one key: set, get, del, update, ttl.

use kvapi::{Deleted, Entry, Written};
use serde_json::json;

use crate::cli::{DelArgs, GetArgs, SetArgs, TtlArgs, UpdateArgs};
use crate::client::{Client, Condition, TtlChange};
use crate::duration;
use crate::error::Error;
use crate::output::{Format, Output, shown_key};

pub fn set(client: &Client, args: SetArgs, out: &mut Output) -> Result<(), Error> {
    let condition = match (args.if_absent, args.if_version) {
        (true, _) => Condition::Absent,
        (false, Some(version)) => Condition::Version(version),
        (false, None) => Condition::Always,
    };
    let ttl = args.ttl.map_or(TtlChange::Keep, TtlChange::Set);
    let value = args
        .value
        .unwrap_or(crate::value::ValueSource::Stdin)
        .read()?;
    let written = client.put(&args.key, value, condition, ttl)?;
    show_written(&args.key, &written, out)
}

pub fn update(client: &Client, args: UpdateArgs, out: &mut Output) -> Result<(), Error> {
    let ttl = match (args.ttl, args.persist) {
        (Some(ttl), _) => TtlChange::Set(ttl),
        (None, true) => TtlChange::Persist,
        (None, false) => TtlChange::Keep,
    };
    let value = args.value.read()?;
    let written = client.put(&args.key, value, Condition::Present, ttl)?;
    show_written(&args.key, &written, out)
}

fn show_written(key: &str, written: &Written<'_>, out: &mut Output) -> Result<(), Error> {
    match out.format() {
        Format::Text => {
            let verb = if written.created {
                "created"
            } else {
                "updated"
            };
            let expiry = match written.ttl() {
                Some(ttl) => format!(", expires in {}", duration::format(ttl)),
                None => String::new(),
            };
            out.line(format_args!(
                "{verb} {} (version {}{expiry})",
                shown_key(key),
                written.version
            ))
        }
        // The server's answer, under the key as it was typed.
        Format::Json => out.json(&Written {
            key: key.into(),
            ..written.clone()
        }),
    }
}

pub fn get(client: &Client, args: GetArgs, out: &mut Output) -> Result<(), Error> {
    let entry = client.get(&args.key)?;
    if args.raw {
        return out.bytes(&entry.value);
    }
    match out.format() {
        Format::Text => match std::str::from_utf8(&entry.value) {
            Ok(text) => out.line(text.strip_suffix('\n').unwrap_or(text)),
            // Raw bytes would garble a terminal; escaped, a person can read them.
            Err(_) => out.line(entry.value.escape_ascii()),
        },
        // The seed API's entry shape.
        Format::Json => out.json(&Entry::new(
            &args.key,
            &entry.value,
            entry.meta.version,
            entry.meta.ttl,
        )),
    }
}

pub fn del(client: &Client, args: DelArgs, out: &mut Output) -> Result<(), Error> {
    client.remove(&args.key, args.if_version)?;
    match out.format() {
        Format::Text => out.line(format_args!("deleted {}", shown_key(&args.key))),
        Format::Json => out.json(&Deleted::new(&args.key)),
    }
}

pub fn ttl(client: &Client, args: TtlArgs, out: &mut Output) -> Result<(), Error> {
    let meta = client.head(&args.key)?;
    match out.format() {
        Format::Text => match meta.ttl {
            Some(ttl) => out.line(format_args!("expires in {}", duration::format(ttl))),
            None => out.line(format_args!(
                "{} has no TTL: it never expires",
                shown_key(&args.key)
            )),
        },
        Format::Json => out.json(&json!({
            "key": args.key,
            "ttl_ms": meta.ttl.map(|ttl| ttl.as_millis() as u64),
        })),
    }
}
