//! What every handler shares: the store, the policy, the limiters, the metrics.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use coffer_store::Store;
use ipnet::IpNet;
use tokio::sync::watch;

use crate::body::BodyLimits;
use crate::idempotency::Idempotency;
use crate::metrics::Metrics;
use crate::network::NetworkPolicy;
use crate::rate_limit::RateLimits;
use crate::read_audit::ReadAuditor;

/// Default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default time a client has to send a whole request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of request bodies read at once; past it a request gets 503 at once
/// instead of a connection held for a slow body.
pub const DEFAULT_BODY_READERS: usize = 512;
/// Default failed authentications per minute per client IP.
pub const DEFAULT_AUTH_FAILURES_PER_MINUTE: u32 = 60;
/// Default longest hold of a changes feed request: the longest `wait` API.md allows.
pub const DEFAULT_CHANGES_MAX_WAIT: Duration =
    Duration::from_secs(crate::requests::MAX_WAIT_SECONDS);

/// Server settings that shape request handling.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest accepted request body in bytes.
    pub body_limit: usize,
    /// Time a client has to send a whole request body before 408.
    pub body_timeout: Duration,
    /// Request bodies read at once.
    pub body_readers: usize,
    /// Global allowed client ranges (empty: none).
    pub allowed_ips: Vec<IpNet>,
    /// Proxies whose forwarded headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Requests per minute per token (`None`: unlimited).
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Failed authentications per minute per client IP before 429.
    pub auth_failures_per_minute: NonZeroU32,
    /// Longest a changes feed request is held, whatever `wait` asks for.
    pub changes_max_wait: Duration,
    /// Reads whose audit entries are held in memory while the disk is full.
    pub held_reads: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            body_readers: DEFAULT_BODY_READERS,
            allowed_ips: Vec::new(),
            trusted_proxies: Vec::new(),
            rate_limit_per_minute: None,
            auth_failures_per_minute: NonZeroU32::new(DEFAULT_AUTH_FAILURES_PER_MINUTE)
                .expect("non-zero"),
            changes_max_wait: DEFAULT_CHANGES_MAX_WAIT,
            held_reads: crate::read_audit::DEFAULT_HELD_READS,
        }
    }
}

/// Shared state of a running server.
#[derive(Debug)]
pub struct AppState {
    /// The store.
    pub store: Arc<Store>,
    /// How request bodies are read: size, deadline, how many at once.
    pub body: BodyLimits,
    /// Network policy.
    pub network: NetworkPolicy,
    /// Rate limiters.
    pub limits: RateLimits,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Writes the audit entries of reads.
    pub read_audit: Arc<ReadAuditor>,
    /// Longest a changes feed request is held.
    pub changes_max_wait: Duration,
    /// Set once the server is stopping: held requests answer at once.
    stopping: watch::Sender<bool>,
    /// Requests with an `Idempotency-Key` that are running.
    pub idempotency: Idempotency,
}

impl AppState {
    /// State for a store and settings.
    pub fn new(store: Arc<Store>, config: ServerConfig) -> Self {
        AppState {
            read_audit: ReadAuditor::new(Arc::clone(&store), config.held_reads),
            store,
            body: BodyLimits::new(config.body_limit, config.body_timeout, config.body_readers),
            network: NetworkPolicy {
                allowed: config.allowed_ips,
                trusted_proxies: config.trusted_proxies,
            },
            limits: RateLimits::new(
                config.rate_limit_per_minute,
                config.auth_failures_per_minute,
            ),
            metrics: Metrics::new(),
            changes_max_wait: config.changes_max_wait,
            stopping: watch::Sender::new(false),
            idempotency: Idempotency::new(),
        }
    }

    /// Tells held requests (changes feed waits) that the server is stopping, so that
    /// they answer now instead of holding up a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`AppState::begin_shutdown`] was called (at once if it was).
    pub async fn stopping(&self) {
        let mut stopping = self.stopping.subscribe();
        // The sender lives as long as `self`: the wait ends only with the flag set.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }
}
