//! `import`: writes the records of an export file, with a progress bar on a
//! terminal, and reports what it did.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::Path;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use serde_json::json;

use crate::cli::ImportArgs;
use crate::client::{Client, Condition, TtlChange};
use crate::error::Error;
use crate::output::{Format, Output};
use crate::record::{Deadline, Record};

/// What an import did, key by key.
#[derive(Debug, Default)]
struct Counts {
    imported: u64,
    existing: u64,
    expired: u64,
}

/// What became of one record.
enum Outcome {
    Imported,
    /// `--if-absent` and the key exists.
    Existing,
    /// Its deadline passed before it could be written.
    Expired,
}

pub fn import(client: &Client, args: ImportArgs, out: &mut Output) -> Result<(), Error> {
    let stdin = args.file == Path::new("-");
    let name = if stdin {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file).map_err(|source| Error::Read {
            path: args.file.clone(),
            source,
        })?;
        let size = file.metadata().ok().map(|meta| meta.len());
        (Box::new(BufReader::new(file)), size)
    };
    let progress = progress_bar(size);
    let mut counts = Counts::default();
    let result = import_lines(client, reader, &args, &progress, &mut counts).map_err(
        |(line, err)| match err {
            // A failing disk is not about the line it failed on.
            err @ Error::Read { .. } => err,
            err => Error::Import {
                file: name.clone(),
                line,
                imported: counts.imported,
                source: Box::new(err),
            },
        },
    );
    // Cleared on failure too, so the error line is not drawn over.
    progress.finish_and_clear();
    result?;
    report(&name, &counts, out)
}

/// Writes every record; on failure, the line number and what went wrong.
fn import_lines(
    client: &Client,
    mut reader: Box<dyn BufRead>,
    args: &ImportArgs,
    progress: &ProgressBar,
    counts: &mut Counts,
) -> Result<(), (u64, Error)> {
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|source| {
            let path = args.file.clone();
            (number, Error::Read { path, source })
        })?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        progress.inc(read as u64);
        if line.trim_ascii().is_empty() {
            continue;
        }
        // Deadlines are measured against the clock at each write, so a long
        // import doesn't stretch the keys it writes last.
        match import_record(client, &line, args.if_absent, Timestamp::now()) {
            Ok(Outcome::Imported) => counts.imported += 1,
            Ok(Outcome::Existing) => counts.existing += 1,
            Ok(Outcome::Expired) => counts.expired += 1,
            Err(err) => return Err((number, err)),
        }
        progress.set_message(format!("{} keys", counts.imported));
    }
}

fn import_record(
    client: &Client,
    line: &[u8],
    if_absent: bool,
    now: Timestamp,
) -> Result<Outcome, Error> {
    let record: Record = serde_json::from_slice(line)
        .map_err(|err| Error::Input(format!("not an export record ({err})")))?;
    let value = record.value().map_err(Error::Input)?;
    let ttl = match record.deadline(now).map_err(Error::Input)? {
        Deadline::Passed => return Ok(Outcome::Expired),
        Deadline::In(ttl) => TtlChange::Set(ttl),
        // Persist, so the key ends up as in the file even if it had a TTL.
        Deadline::Never if !if_absent => TtlChange::Persist,
        Deadline::Never => TtlChange::Keep,
    };
    let condition = if if_absent {
        Condition::Absent
    } else {
        Condition::Always
    };
    match client.put(&record.key, value, condition, ttl) {
        Ok(_) => Ok(Outcome::Imported),
        Err(Error::ConditionFailed { .. }) if if_absent => Ok(Outcome::Existing),
        Err(err) => Err(err),
    }
}

/// A bar over the file's bytes, or a counter for stdin, drawn only when
/// stderr is a terminal: piped output stays clean.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::new(size),
            "importing {wide_bar} {bytes}/{total_bytes}, {msg}, {eta} left",
        ),
        None => (ProgressBar::new_spinner(), "{spinner} importing: {msg}"),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_message("0 keys");
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn report(name: &str, counts: &Counts, out: &mut Output) -> Result<(), Error> {
    match out.format() {
        Format::Text => {
            let mut skipped = Vec::new();
            if counts.existing > 0 {
                skipped.push(format!("{} already present", counts.existing));
            }
            if counts.expired > 0 {
                skipped.push(format!("{} expired", counts.expired));
            }
            let skipped = if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped {})", skipped.join(", "))
            };
            let keys = if counts.imported == 1 { "key" } else { "keys" };
            out.line(format_args!(
                "imported {} {keys} from {name}{skipped}",
                counts.imported
            ))
        }
        Format::Json => out.json(&json!({
            "file": name,
            "imported": counts.imported,
            "skipped_existing": counts.existing,
            "skipped_expired": counts.expired,
        })),
    }
}
