//! The REST API in the binary: `urja admin token`, and the API served beside the head-end by
//! `urja up` and `urja hes` (with the head-end's command executor, resumed at start).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use field::service::Field;
use hes::commands::{Commands, CommandsConfig};
use hes::runtime::{DataDir, HeadEnd};
use model::Paise;
use store::{Role, Store};
use tokio::sync::watch;
use web::{AppState, GatewaySecret};

use crate::hes_cli::{DataArgs, ist, stopped};
use crate::{billing_cli, care_cli, field_cli, prepaid_cli};

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an API token and print it, once (only its hash is stored).
    Token(TokenArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// admin (everything, tokens too), operator (read, edit intervals, close exceptions, send
    /// commands) or reader (read only).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// What the token is for.
    #[arg(long, default_value = "")]
    pub label: String,
    /// Days until the token expires (default: never).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub expires_days: Option<u32>,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse().map_err(|e: store::UnknownRole| e.to_string())
}

/// `urja admin token`.
pub fn token(args: TokenArgs) -> Result<()> {
    let path = DataDir(args.data.data.clone()).store_path();
    let store = Store::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let now = Utc::now();
    let expires = args
        .expires_days
        .map(|d| now + chrono::Duration::days(i64::from(d)));
    let issued = web::issue_token(&store, args.role, &args.label, expires, now)
        .context("creating the token")?;
    println!(
        "token {} (role {}{}, {}):",
        issued.token.id,
        issued.token.role,
        if args.label.is_empty() {
            String::new()
        } else {
            format!(", label {:?}", args.label)
        },
        expires.map_or_else(
            || "does not expire".into(),
            |e| format!("expires {}", ist(e))
        )
    );
    println!("{}", issued.secret);
    println!(
        "Keep it now: only its hash is stored, it cannot be shown again. Send it as \
         `Authorization: Bearer <token>`."
    );
    Ok(())
}

/// The API running beside a head-end.
#[derive(Debug)]
pub struct Api {
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    prepaid: prepaid_cli::PrepaidTasks,
    billing: tokio::task::JoinHandle<()>,
    field: tokio::task::JoinHandle<()>,
    webhooks: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `listen`, starts the command executor on `hes` (resuming what a previous run left)
/// and the prepaid engine on it, and serves the API until `stop` turns true. With `bootstrap`,
/// a data directory that has never had a token gets an admin token, printed once. Of the
/// `simulated` consumers (a simulated fleet's), the prepaid ones are moved to prepaid if they
/// are not yet and the postpaid ones put in billing cycle 1; all are told things through local
/// stand-ins. Postpaid billing cycles run beside it, and customer care's webhooks when the data
/// directory has a `webhooks.json`.
pub async fn start(
    listen: SocketAddr,
    hes: &HeadEnd,
    data_dir: &Path,
    bootstrap: bool,
    simulated: &[Simulated],
    stop: watch::Receiver<bool>,
) -> Result<Api> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening for the API on {listen}"))?;
    let addr = listener.local_addr().context("the API's address")?;
    let commands = Commands::new(hes.clone(), CommandsConfig::default());
    let resumed = commands
        .resume()
        .await
        .context("resuming the commands a previous run left")?;
    if resumed.queued + resumed.rerun + resumed.abandoned > 0 {
        println!(
            "commands from the previous run: {} queued and {} running resumed, {} abandoned \
             (outcome unknown)",
            resumed.queued, resumed.rerun, resumed.abandoned
        );
    }
    let store = hes.store().clone();
    let tokens = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.api_tokens())
            .await
            .context("reading the API tokens")??
    };
    if tokens.is_empty() {
        if bootstrap {
            let store = store.clone();
            let issued = tokio::task::spawn_blocking(move || {
                web::issue_token(
                    &store,
                    Role::Admin,
                    "first admin token (urja up)",
                    None,
                    Utc::now(),
                )
            })
            .await
            .context("creating the first admin token")??;
            println!(
                "first start: created admin token {} (only its hash is stored; it cannot be \
                 shown again, keep it now):",
                issued.token.id
            );
            println!("admin token: {}", issued.secret);
        } else {
            println!(
                "no API tokens yet: create one with `urja admin token --data {} --role admin`",
                data_dir.display()
            );
        }
    }
    let all: Vec<String> = simulated.iter().map(|s| s.consumer_no.clone()).collect();
    let (to_prepaid, postpaid): (Vec<&Simulated>, Vec<&Simulated>) =
        simulated.iter().partition(|s| !s.postpaid);
    let to_prepaid: Vec<String> = to_prepaid.iter().map(|s| s.consumer_no.clone()).collect();
    let postpaid: Vec<String> = postpaid.iter().map(|s| s.consumer_no.clone()).collect();
    let (engine, secret, prepaid) = prepaid_cli::start(
        store.clone(),
        commands.clone(),
        data_dir,
        &all,
        stop.clone(),
    )
    .await?;
    let billing =
        billing_cli::start(store.clone(), commands.clone(), &postpaid, stop.clone()).await?;
    let field = field_cli::start(
        Field::new(store.clone(), Some(commands.clone()), Some(engine.clone())),
        stop.clone(),
    );
    let webhooks = care_cli::start(store.clone(), data_dir, stop.clone()).await?;
    let moving = prepaid_cli::migrate_simulated(&engine, &to_prepaid, SIMULATED_OPENING).await;
    if moving > 0 {
        println!(
            "prepaid: moving {moving} simulated consumer(s) to prepaid through the head-end, \
             opening balance {SIMULATED_OPENING}"
        );
    }
    let state = AppState::new(store)
        .with_commands(commands)
        .with_prepaid(engine)
        .with_gateway(prepaid_cli::GATEWAY, GatewaySecret::new(secret))
        .with_firmware_dir(data_dir.join("firmware"));
    let task = tokio::spawn(web::serve(listener, state, stopped(stop)));
    println!("API: http://{addr}/api/v1 (OpenAPI: http://{addr}/api/openapi.json)");
    Ok(Api {
        task,
        prepaid,
        billing,
        field,
        webhooks,
    })
}

/// A simulated fleet's consumer, and whether it stays postpaid.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub consumer_no: String,
    pub postpaid: bool,
}

/// What a simulated consumer starts prepaid with.
const SIMULATED_OPENING: Paise = Paise(50_000);

impl Api {
    /// Waits for the server to finish after its stop signal (at most a few seconds: a client
    /// holding a request open does not keep the process alive).
    pub async fn finish(self) {
        self.prepaid.finish().await;
        let _ = self.billing.await;
        let _ = self.field.await;
        if let Some(webhooks) = self.webhooks {
            let _ = webhooks.await;
        }
        let abort = self.task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "the API server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "the API server task failed"),
            Err(_) => {
                abort.abort();
                tracing::warn!("the API server did not stop in time");
            }
        }
    }
}
