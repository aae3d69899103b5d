//! Rate limits: per token (off by default) and per client IP for failed
//! authentications (a brute-force guard, on by default).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::error::ApiError;

/// Past this many client addresses, refilled entries are dropped before counting.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// The server's limiters.
#[derive(Debug)]
pub struct RateLimits {
    per_token: Option<DefaultKeyedRateLimiter<Uuid>>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: NonZeroU32) -> Quota {
    Quota::per_minute(n)
}

fn throttled(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> ApiError {
    let wait = not_until.wait_time_from(DefaultClock::default().now());
    ApiError::throttled(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

impl RateLimits {
    /// `per_token`: requests per minute per token (`None`: unlimited).
    /// `auth_failures`: failed authentications per minute per client IP.
    pub fn new(per_token: Option<NonZeroU32>, auth_failures: NonZeroU32) -> Self {
        RateLimits {
            per_token: per_token.map(|n| RateLimiter::keyed(per_minute(n))),
            auth_failures: RateLimiter::keyed(per_minute(auth_failures)),
        }
    }

    /// Counts one request of a token.
    pub fn check_token(&self, token_id: Uuid) -> Result<(), ApiError> {
        match &self.per_token {
            Some(limiter) => limiter.check_key(&token_id).map_err(throttled),
            None => Ok(()),
        }
    }

    /// Counts one failed authentication from `ip`; past the limit the answer becomes 429.
    pub fn check_auth_failure(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(ip) = ip else { return Ok(()) };
        // Clients that rotate addresses must not grow the table without bound: forget
        // the ones whose budget has refilled.
        if self.auth_failures.len() > MAX_TRACKED_CLIENTS {
            self.auth_failures.retain_recent();
        }
        self.auth_failures.check_key(&ip).map_err(throttled)
    }
}
