//! `ferry`: every Ferry function in one process, on embedded defaults.

mod cli;
mod demo;
mod replay;
mod repos;
mod server;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ferry::telemetry::init();
    cli::run(cli::Cli::parse()).await
}
