//! kvserver's entry point: parse flags, set up logging, bind, run.

use std::net::TcpListener;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kvserver::cli::Cli;
use kvserver::{Application, shutdown_signal};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match actix_web::rt::System::new().block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
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
