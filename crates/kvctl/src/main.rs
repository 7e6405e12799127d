//! kvctl's entry point: parse, run, and decide the exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use kvctl::{Cli, Error};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(err),
    };
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let result = kvctl::run(cli, &mut stdout);
    // Whatever was printed before a failure still goes out, before the error.
    let flushed = stdout.flush().map_err(Error::Output);
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        // `kvctl list | head`: the reader has all it wanted.
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", kvctl::error::with_causes(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The one place exit codes are decided (the table is in `kvctl --help`).
fn exit_code(err: &Error) -> u8 {
    match err.kind() {
        Error::NotFound { .. } => 1,
        Error::Usage(_) | Error::Read { .. } | Error::Input(_) | Error::Invalid { .. } => 2,
        Error::ConditionFailed { .. } => 3,
        Error::Unreachable { .. }
        | Error::Timeout { .. }
        | Error::Auth { .. }
        | Error::Server { .. }
        | Error::Output(_)
        | Error::Import { .. } => 4,
    }
}

/// Help and version go to stdout with exit 0. A usage error is one line
/// with exit 2, like every other error; clap's full usage block would bury it.
fn usage(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(err.exit_code() as u8)
        }
        _ => {
            eprintln!("error: {}", one_line(&err.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// Folds clap's multi-line usage error into one line: the message, its
/// details and tips, and which help to read.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut help = "kvctl".to_owned();
    let mut in_message = true;
    for line in rendered.lines().map(str::trim) {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            let words = usage.split(' ');
            help = words
                .take_while(|word| !word.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ");
        } else if line.is_empty() {
            in_message = false;
        } else if in_message {
            parts.push(line.strip_prefix("error: ").unwrap_or(line).to_owned());
        } else if line.starts_with("tip:") {
            parts.push(format!("({line})"));
        }
    }
    format!("{}; see '{help} --help'", parts.join(" "))
}
