//! The `ferry` command line: each subcommand runs the same use case its
//! Lambda runs, with the same configuration.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::replay;

#[derive(Debug, Parser)]
#[command(name = "ferry", version, about = "Git host events to Kubernetes: every Ferry function in one process")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve POST /webhook and GET /healthz, and run the schedules in-process.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
    },
    /// Run one poller cycle.
    Poll,
    /// Run one token rotation.
    Rotate,
    /// Run one reconciliation cycle.
    Reconcile,
    /// Sign a sample event with the configured webhook secret and send it to a running server.
    Replay {
        /// A raw GitHub payload or a Lambda HTTP event, e.g. from `events/`.
        file: std::path::PathBuf,
        /// Where `ferry serve` listens.
        #[arg(long, default_value = "http://127.0.0.1:3000/webhook")]
        url: String,
        /// The event name, when the file does not say (default: from the file name).
        #[arg(long)]
        event: Option<String>,
        /// The delivery id to send (default: a fresh one, so it is never a duplicate).
        #[arg(long)]
        delivery: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen } => serve(listen).await,
        Command::Poll => anyhow::bail!("`ferry poll` is not implemented yet (issue #6)"),
        Command::Rotate => anyhow::bail!("`ferry rotate` is not implemented yet (issue #4)"),
        Command::Reconcile => anyhow::bail!("`ferry reconcile` is not implemented yet (issue #7)"),
        Command::Replay { file, url, event, delivery } => {
            replay::replay(replay::Replay {
                file: &file,
                url: &url,
                event: event.as_deref(),
                delivery: delivery.as_deref(),
            })
            .await
        }
    }
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let config = ferry::Config::from_env()?;
    let data_dir = config.data_dir.clone();
    let context = ferry::Context::connect(config).await.context("cannot start")?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %data_dir.display(), "ferry serving");
    // Scripts and tests read the address from this line.
    println!("ferry listening on http://{address}");
    axum::serve(listener, ferry::http::router(context))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
