//! kvserver's entry point: parse flags, set up logging, bind, run.

use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kvserver::cli::{Cli, Command, TokenCommand};
use kvserver::{Application, shutdown_signal};
use kvserver::{auth, logging};

mod malloc_arenas;

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::Token(TokenCommand::Create { name, grants })) = cli.command.take() {
        return create_token(&name, &grants);
    }
    // Before the runtime starts any thread: see malloc_arenas.rs.
    let arenas = malloc_arenas::limit_for_bound(cli.max_memory.is_some());
    logging::init();
    log::info!("malloc arenas: {}", arenas.describe());
    let outcome = actix_web::rt::System::new().block_on(run(cli));
    logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Printed once, here, and not logged as well: both go to stderr.
            eprintln!("kvserver: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let fd_limit =
        rlimit::increase_nofile_limit(u64::MAX).context("reading the file-descriptor limit")?;
    let addr = cli.addr.clone();
    let config = cli.into_config(fd_limit).map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(&addr).with_context(|| format!("binding {addr}"))?;
    let app = Application::build(config, listener)?;
    app.run_until(shutdown_signal()).await
}

fn create_token(name: &str, grants: &[auth::Grant]) -> ExitCode {
    match auth::create_token(name, grants) {
        Ok((token, line)) => {
            println!("{token}");
            println!("{line}");
            eprintln!(
                "The first line is the token: give it to the client now, it is not stored anywhere.\n\
                 The second line goes into the auth file (kvserver --auth-file FILE)."
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("kvserver: {err}");
            ExitCode::from(2)
        }
    }
}
