//! `coffer serve`: open the store, initialise it if new, serve until SIGINT/SIGTERM,
//! then finish requests in flight and flush.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{web, HttpServer};
use clap::Args;
use coffer_server::audit_file::AuditFile;
use coffer_server::network::parse_ip_or_cidr;
use coffer_server::{create_app, AppState, ServerConfig};
use ipnet::IpNet;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use crate::StoreArgs;

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8240";

/// Options of `coffer serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "COFFER_BIND", default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, env = "COFFER_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Global allowed client IPs/CIDR ranges, comma-separated (default: any).
    #[arg(long, env = "COFFER_ALLOWED_IPS", value_delimiter = ',', value_parser = parse_net)]
    allowed_ips: Vec<IpNet>,
    /// Proxies whose X-Forwarded-For / X-Real-IP are believed, comma-separated.
    #[arg(long, env = "COFFER_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    trusted_proxies: Vec<IpNet>,
    /// Requests per minute per token (default: unlimited).
    #[arg(long, env = "COFFER_RATE_LIMIT")]
    rate_limit: Option<NonZeroU32>,
    /// Failed authentications per minute per client IP before 429.
    #[arg(long, env = "COFFER_AUTH_FAILURE_LIMIT", default_value_t = NonZeroU32::new(coffer_server::state::DEFAULT_AUTH_FAILURES_PER_MINUTE).expect("non-zero"))]
    auth_failure_limit: NonZeroU32,
    /// Largest request body in bytes.
    #[arg(long, env = "COFFER_BODY_LIMIT", default_value_t = coffer_server::state::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Seconds a client has to send a whole request body before 408.
    #[arg(long, env = "COFFER_BODY_TIMEOUT", default_value_t = coffer_server::state::DEFAULT_BODY_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Request bodies read at once; past it a request is answered 503 at once.
    #[arg(long, env = "COFFER_BODY_READERS", default_value_t = coffer_server::state::DEFAULT_BODY_READERS as u32,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    body_readers: u32,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, env = "COFFER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "COFFER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "COFFER_WORKERS")]
    workers: Option<usize>,
    /// Longest a changes feed request is held, in seconds, whatever its `wait` (below a
    /// proxy's idle timeout, say).
    #[arg(long, env = "COFFER_CHANGES_MAX_WAIT", default_value_t = coffer_server::requests::MAX_WAIT_SECONDS,
          value_parser = clap::value_parser!(u64).range(0..=coffer_server::requests::MAX_WAIT_SECONDS))]
    changes_max_wait: u64,
    /// Keep audit entries this long (`30d`, `12h`, ...) and trim older ones in the
    /// background; the chain then verifies from the checkpoint where trimming stopped.
    /// Default: keep every entry.
    #[arg(long, env = "COFFER_AUDIT_RETENTION", value_parser = humantime::parse_duration)]
    audit_retention: Option<std::time::Duration>,
    /// Also append every audit entry to this file, one JSON line each (the fields of a
    /// `GET /v1/audit/` entry), fsynced with the writes; reopened on SIGHUP for logrotate.
    #[arg(long, env = "COFFER_AUDIT_FILE")]
    audit_file: Option<PathBuf>,
    /// Reads whose audit entries are held in memory while the disk is full; past it
    /// reads answer 503 too.
    #[arg(long, env = "COFFER_HELD_READS", default_value_t = coffer_server::read_audit::DEFAULT_HELD_READS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10_000_000))]
    held_reads: usize,
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    parse_ip_or_cidr(text).ok_or_else(|| format!("Invalid IP or CIDR: '{text}'"))
}

/// Logs go to stderr through a writer thread, so a request never waits on the
/// terminal or pipe; the returned guard flushes what is left when dropped.
fn init_logging(filter: &str) -> Result<WorkerGuard, String> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| format!("invalid --log-level '{filter}': {e}"))?;
    // The writer thread drains every queued line before it flushes: one write for many.
    let (writer, guard) =
        NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stderr(),
            ));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(guard)
}

/// States the durability setting at start-up, on stderr and in the log.
fn announce_durability(durability: coffer_store::Durability) {
    match durability {
        coffer_store::Durability::Strict => {
            eprintln!("Durability: strict (a write is answered once it is fsynced)");
            tracing::info!(%durability, "a write is answered once it is fsynced");
        }
        coffer_store::Durability::Relaxed => {
            eprintln!(
                "Durability: relaxed (a write is answered before it is fsynced: a power \
                 loss can take answered writes)"
            );
            tracing::warn!(
                %durability,
                "a write is answered before it is fsynced: a power loss can take answered \
                 writes (the log is fsynced every 500 ms, large pages in blob files never)"
            );
        }
    }
}

/// On SIGTERM or SIGINT: stop accepting, answer held requests (changes feed waits) at
/// once, and finish the requests in flight. SIGQUIT stops at once.
async fn stop_on_signal(server: actix_web::dev::ServerHandle, state: web::Data<AppState>) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot listen for signals: the server stops only when killed");
        return;
    };
    let graceful = tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => true,
        _ = quit.recv() => false,
    };
    tracing::info!(graceful, "stopping");
    let stopped = server.stop(graceful);
    state.begin_shutdown();
    stopped.await;
}

/// On SIGHUP: reopen the audit file by its path (after logrotate renamed it).
async fn reopen_on_hangup(file: Arc<AuditFile>) {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let Ok(mut hangup) = signal(SignalKind::hangup()) else {
        tracing::error!("cannot listen for SIGHUP: the audit file is never reopened");
        return;
    };
    while hangup.recv().await.is_some() {
        match file.reopen() {
            Ok(()) => tracing::info!(path = %file.path().display(), "audit file reopened"),
            Err(err) => {
                tracing::error!(error = %err, path = %file.path().display(), "reopening the audit file failed")
            }
        }
    }
}

/// Runs the server until a shutdown signal.
pub fn run(args: ServeArgs) -> Result<(), String> {
    let _log_writer = init_logging(&args.log_level)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(coffer_server::tls::load_server_config(cert, key).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let store = Arc::new(args.store.open()?);
    store.follow_other_nodes();
    match args.store.storage {
        crate::StorageKind::Embedded => announce_durability(args.store.durability),
        crate::StorageKind::Etcd => {
            let endpoints = args.store.etcd_endpoints.join(",");
            let prefix = &args.store.etcd_prefix;
            let node_id = store.node_id();
            eprintln!(
                "Storage: etcd at {endpoints}, prefix {prefix}, as node {node_id} (a write \
                 is answered once a quorum of the cluster has it on disk)"
            );
            tracing::info!(%endpoints, %prefix, %node_id, "storage: etcd");
        }
    }
    if store.rotation_pending().map_err(|e| e.to_string())? {
        let warning = "a master key rotation did not finish: stop the server and run \
                       `coffer rekey` again with the same new key";
        eprintln!("WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    let audit_file = match &args.audit_file {
        Some(path) => {
            let strict = args.store.durability == coffer_store::Durability::Strict;
            let file = Arc::new(
                AuditFile::open(path, strict)
                    .map_err(|e| format!("audit file {}: {e}", path.display()))?,
            );
            if store.set_audit_sink(Box::new(Arc::clone(&file))).is_err() {
                return Err("the store already copies its audit entries elsewhere".into());
            }
            Some(file)
        }
        None => None,
    };
    if let Some(token) = store.initialize().map_err(|e| e.to_string())? {
        eprintln!("Admin token: {}", &*token.token);
        eprintln!("Admin phaseToken: {}", &*token.phase_token);
    }
    let config = ServerConfig {
        body_limit: args.body_limit,
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        body_readers: args.body_readers as usize,
        allowed_ips: args.allowed_ips,
        trusted_proxies: args.trusted_proxies,
        rate_limit_per_minute: args.rate_limit,
        auth_failures_per_minute: args.auth_failure_limit,
        changes_max_wait: std::time::Duration::from_secs(args.changes_max_wait),
        held_reads: args.held_reads,
    };
    let state = web::Data::new(AppState::new(Arc::clone(&store), config));
    coffer_server::idempotency::spawn_sweeper(Arc::clone(&store))
        .map_err(|e| format!("cannot start the sweeper of kept answers: {e}"))?;
    coffer_server::storage_recovery::spawn(Arc::clone(&store), Arc::clone(&state.read_audit))
        .map_err(|e| format!("cannot start the storage recovery: {e}"))?;
    if let Some(retention) = args.audit_retention {
        coffer_server::audit_retention::spawn_trimmer(Arc::clone(&store), retention)
            .map_err(|e| format!("cannot start the audit trimmer: {e}"))?;
    }
    let served = actix_web::rt::System::new().block_on(async move {
        let app_state = state.clone();
        let mut server = HttpServer::new(move || create_app(app_state.clone()))
            .shutdown_timeout(30)
            // The signals are handled below, so that held requests answer first.
            .disable_signals();
        if let Some(workers) = args.workers {
            server = server.workers(workers);
        }
        let (server, scheme) = match tls {
            Some(tls) => (server.bind_rustls_0_23(args.bind, tls), "https"),
            None => (server.bind(args.bind), "http"),
        };
        let server = server.map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
        for addr in server.addrs() {
            eprintln!("Coffer listening on {scheme}://{addr}");
        }
        if scheme == "http" {
            tracing::warn!("serving plain HTTP: give --tls-cert and --tls-key to serve HTTPS");
        }
        let server = server.run();
        actix_web::rt::spawn(stop_on_signal(server.handle(), state));
        if let Some(file) = audit_file {
            actix_web::rt::spawn(reopen_on_hangup(file));
        }
        server.await.map_err(|e| format!("server failed: {e}"))
    });
    let flushed = store
        .flush()
        .map_err(|e| format!("final flush failed: {e}"));
    tracing::info!("stopped");
    served.and(flushed)
}
