//! What each command does, given a client and somewhere to print. One file
//! per group: single keys, listing, export, import, watch.

use clap::CommandFactory;
use serde_json::json;

use crate::cli::{Cli, Command};
use crate::client::Client;
use crate::error::Error;
use crate::output::{Format, Output};

mod export;
mod import;
mod keys;
mod list;
mod watch;

/// Runs one command against the server `client` talks to.
pub fn run(client: &Client, command: Command, out: &mut Output) -> Result<(), Error> {
    match command {
        Command::Set(args) => keys::set(client, args, out),
        Command::Get(args) => keys::get(client, args, out),
        Command::Del(args) => keys::del(client, args, out),
        Command::Update(args) => keys::update(client, args, out),
        Command::Ttl(args) => keys::ttl(client, args, out),
        Command::List(args) => list::list(client, args, out),
        Command::Export(args) => export::export(client, args, out),
        Command::Import(args) => import::import(client, args, out),
        Command::Watch(args) => watch::watch(client, args, out),
        Command::Health => health(client, out),
        Command::Completions(args) => completions(args.shell, out),
    }
}

/// Prints a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut Output) -> Result<(), Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kvctl", &mut script);
    out.bytes(&script)
}

fn health(client: &Client, out: &mut Output) -> Result<(), Error> {
    client.health()?;
    let endpoint = client.endpoint();
    match out.format() {
        Format::Text => out.line(format_args!("ok: {endpoint} is up")),
        Format::Json => out.json(&json!({ "endpoint": endpoint.to_string(), "status": "ok" })),
    }
}
