//! What every handler shares: the store, the policy, the limiters, the metrics.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use coffer_store::Store;
use ipnet::IpNet;

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
    /// Requests with an `Idempotency-Key` that are running.
    pub idempotency: Idempotency,
}

impl AppState {
    /// State for a store and settings.
    pub fn new(store: Arc<Store>, config: ServerConfig) -> Self {
        AppState {
            read_audit: ReadAuditor::new(Arc::clone(&store)),
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
            idempotency: Idempotency::new(),
        }
    }
}
