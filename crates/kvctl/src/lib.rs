//! kvctl: the kvstore command-line client.
//!
//! `main.rs` parses the command line, calls [`run`] and turns the outcome
//! into an exit code; everything else lives here:
//!
//! - `cli`: the clap definitions, the only place that knows flags and
//!   environment variables.
//! - `client`: a typed, blocking HTTP client for kvserver's `/v1` API; the
//!   one place HTTP answers get their meaning. `config` says how it reaches
//!   the server.
//! - `commands`: what each command does, printing through `output`.
//! - `error`: [`Error`], one variant per kind of failure.
//! - `record`: the JSON Lines format of `export` and `import`.
//! - `sse`: a reader of the Server-Sent Events `watch` receives.
//! - `duration`, `value`: TTLs and timeouts as people type them; where a
//!   value comes from (argument, stdin, `@file`).

pub mod cli;
pub mod client;
mod commands;
pub mod config;
mod duration;
pub mod error;
mod output;
mod record;
mod sse;
mod value;

use std::io::Write;

pub use cli::Cli;
pub use client::{Client, ClientConfig};
pub use error::Error;
pub use output::Format;

/// Runs the command `cli` describes, printing results to `stdout`.
pub fn run(cli: Cli, stdout: &mut dyn Write) -> Result<(), Error> {
    let mut out = output::Output::new(cli.global.output, stdout);
    if let cli::Command::Completions(args) = &cli.command {
        // Needs no server, so no client (and no --cacert to read).
        return commands::completions(args.shell, &mut out);
    }
    let client = Client::new(cli.global.client_config()?)?;
    commands::run(&client, cli.command, &mut out)
}
