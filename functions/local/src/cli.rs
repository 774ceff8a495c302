//! The `ferry` command line: each subcommand runs the same use case its
//! Lambda runs, with the same configuration.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use ferry::usecase::cycle::{Cycle, CycleError};

use crate::{demo, replay};

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
        /// Seconds between reconciliation cycles (as the deployed schedule's 10 minutes).
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        reconciliation_period: u64,
    },
    /// The five-minute tour: start Ferry on embedded defaults with the
    /// sample operator config, replay the sample events, show what Ferry
    /// decided and did, and keep serving.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Where the demo keeps its state and dry-run output (emptied first).
        #[arg(long, default_value = ".ferry-demo")]
        data_dir: std::path::PathBuf,
    },
    /// Print a GitHub App manifest with exactly the permissions and events Ferry uses.
    AppManifest {
        /// Ferry's public base URL (webhooks go to <URL>/webhook).
        #[arg(long, required_unless_present = "webhook_url")]
        url: Option<String>,
        /// The exact webhook URL, overriding <URL>/webhook: a tunnel's
        /// channel on a laptop (also the App's homepage without --url).
        #[arg(long)]
        webhook_url: Option<String>,
        /// The App's name on GitHub (unique across GitHub).
        #[arg(long, default_value = "Ferry")]
        name: String,
    },
    /// List the tracked repositories.
    Repos {
        /// A running Ferry to ask (with FERRY_ADMIN_TOKEN); by default the configured stores directly.
        #[arg(long)]
        url: Option<String>,
    },
    /// Track a repository: App mode, or with --token its own token (read from
    /// standard input, never from the command line) and a webhook.
    Track {
        /// owner/repo
        repository: String,
        /// Repository-token mode: read the token from standard input.
        #[arg(long)]
        token: bool,
        /// A running Ferry to ask (with FERRY_ADMIN_TOKEN); by default the configured stores directly.
        #[arg(long)]
        url: Option<String>,
    },
    /// Untrack a repository: its webhook, previews, records and token go.
    Untrack {
        /// owner/repo
        repository: String,
        /// A running Ferry to ask (with FERRY_ADMIN_TOKEN); by default the configured stores directly.
        #[arg(long)]
        url: Option<String>,
    },
    /// Run one poller cycle.
    Poll,
    /// Run one token rotation.
    Rotate,
    /// Run one reconciliation cycle.
    Reconcile {
        /// Start no repository's repairs after this many seconds; what is left waits for the next cycle.
        #[arg(long)]
        deadline: Option<u64>,
    },
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
        Command::Serve { listen, reconciliation_period } => {
            serve(listen, std::time::Duration::from_secs(reconciliation_period)).await
        }
        Command::Demo { listen, data_dir } => demo::demo(listen, &data_dir).await,
        Command::AppManifest { url, webhook_url, name } => app_manifest(url.as_deref(), webhook_url.as_deref(), &name),
        Command::Repos { url } => crate::repos::repos(url.as_deref()).await,
        Command::Track { repository, token, url } => crate::repos::track(&repository, token, url.as_deref()).await,
        Command::Untrack { repository, url } => crate::repos::untrack(&repository, url.as_deref()).await,
        Command::Poll => once(Cycle::Poll, None).await,
        Command::Rotate => once(Cycle::Rotate, None).await,
        Command::Reconcile { deadline } => once(Cycle::Reconcile, deadline.map(std::time::Duration::from_secs)).await,
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

async fn serve(listen: SocketAddr, reconciliation: std::time::Duration) -> anyhow::Result<()> {
    let (address, context, server) = start(ferry::Config::from_env()?, listen).await?;
    tokio::spawn(schedule(Cycle::Reconcile, reconciliation, context));
    // Scripts and tests read the address from this line.
    println!("ferry listening on http://{address}");
    server.await
}

/// Connects to what `config` names, binds `listen`, and starts the
/// schedules the deployed functions run: the address bound, the context
/// it serves, and the server to await (it stops on Ctrl-C).
pub async fn start(
    config: ferry::Config,
    listen: SocketAddr,
) -> anyhow::Result<(SocketAddr, ferry::Context, impl std::future::Future<Output = anyhow::Result<()>> + use<>)> {
    let data_dir = config.data_dir.clone();
    ferry::metrics::prometheus::install();
    let mut context = ferry::Context::connect(config).await.context("cannot start")?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    // Only this machine can reach a loopback address: no token needed there.
    context.ui_open = address.ip().is_loopback() && context.config.admin_token.is_none();
    tracing::info!(%address, data_dir = %data_dir.display(), "ferry serving");
    if context.config.github_app.is_some() {
        tokio::spawn(schedule(Cycle::Rotate, ROTATE_EVERY, context.clone()));
    } else {
        tracing::info!("no GitHub App configured (FERRY_GITHUB_APP_ID): token rotation is off");
    }
    if context.operator.poll.is_empty() {
        tracing::info!("no [[poll]] refs in the operator config: polling is off");
    } else {
        tokio::spawn(schedule(Cycle::Poll, POLL_EVERY, context.clone()));
    }
    let served = context.clone();
    let server = async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        crate::server::serve(listener, ferry::http::router(served), ctrl_c).await;
        Ok(())
    };
    Ok((address, context, server))
}

/// Prints the App manifest; how to use it goes to stderr.
fn app_manifest(url: Option<&str>, webhook_url: Option<&str>, name: &str) -> anyhow::Result<()> {
    use ferry::forge::github::manifest;
    let urls = manifest::AppUrls::new(url, webhook_url).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&manifest::app_manifest(name, &urls))?);
    eprintln!(
        "Create the App from this manifest (README, \"Create the GitHub App\"): POST it as the `manifest` form field \
         to https://github.com/settings/apps/new (or /organizations/<org>/settings/apps/new), then exchange the \
         code GitHub returns with POST /app-manifests/<code>/conversions for the App id, private key and webhook \
         secret."
    );
    Ok(())
}

/// How often `ferry serve` polls, as the deployed schedule does; each ref
/// is polled only when its own frequency makes it due.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How often `ferry serve` rotates tokens, as the deployed schedule does.
const ROTATE_EVERY: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Runs `cycle` now and then every `period`, as EventBridge would.
async fn schedule(cycle: Cycle, period: std::time::Duration, context: ferry::Context) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // A cycle starts no new work once the next one is due.
        match cycle.run(&context, Some(tokio::time::Instant::now() + period)).await {
            // Logged with its report by the cycle itself.
            Ok(_) | Err(CycleError::Failures { .. }) => {}
            Err(error) => tracing::error!(schedule = cycle.name(), %error, "the cycle failed; the next one retries"),
        }
    }
}

/// One cycle, as its Lambda runs it: prints its report (a reconciliation
/// also the line it ends with), and fails as the Lambda would.
async fn once(cycle: Cycle, within: Option<std::time::Duration>) -> anyhow::Result<()> {
    let context = ferry::Context::connect(ferry::Config::from_env()?).await.context("cannot start")?;
    let result = cycle.run(&context, within.map(|within| tokio::time::Instant::now() + within)).await;
    if let Ok(report) | Err(CycleError::Failures { report, .. }) = &result {
        println!("{}", serde_json::to_string_pretty(&report.fields)?);
        if cycle == Cycle::Reconcile {
            println!("{}", report.summary);
        }
    }
    result?;
    Ok(())
}
