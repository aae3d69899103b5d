//! Rate limits: per token (off by default) and per client for failed authentications
//! (a brute-force guard, on by default). Clients are counted by
//! [`client_bucket`]: an IPv4 address or an IPv6 /64.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::ApiError;
use crate::network::client_bucket;

/// Past this many clients, entries whose budget has refilled (or whose block has
/// ended) are dropped before another is added: strangers cannot grow the tables.
const MAX_TRACKED_CLIENTS: usize = 100_000;

/// The server's limiters.
#[derive(Debug)]
pub struct RateLimits {
    per_token: Option<DefaultKeyedRateLimiter<Uuid>>,
    auth_failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Clients over their failure budget, until when: refused before their token is
    /// even looked up.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

fn per_minute(n: NonZeroU32) -> Quota {
    Quota::per_minute(n)
}

fn retry_after(wait: Duration) -> ApiError {
    ApiError::throttled(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

impl RateLimits {
    /// `per_token`: requests per minute per token (`None`: unlimited).
    /// `auth_failures`: failed authentications per minute per client.
    pub fn new(per_token: Option<NonZeroU32>, auth_failures: NonZeroU32) -> Self {
        RateLimits {
            per_token: per_token.map(|n| RateLimiter::keyed(per_minute(n))),
            auth_failures: RateLimiter::keyed(per_minute(auth_failures)),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of a token.
    pub fn check_token(&self, token_id: Uuid) -> Result<(), ApiError> {
        match &self.per_token {
            Some(limiter) => limiter.check_key(&token_id).map_err(|not_until| {
                retry_after(not_until.wait_time_from(DefaultClock::default().now()))
            }),
            None => Ok(()),
        }
    }

    /// Refuses a client that is over its failed-authentication budget, before any
    /// token lookup.
    pub fn check_not_blocked(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(bucket) = ip.map(client_bucket) else {
            return Ok(());
        };
        let mut blocked = self.blocked.lock();
        match blocked.get(&bucket).copied() {
            Some(until) if until > Instant::now() => Err(retry_after(until - Instant::now())),
            Some(_) => {
                blocked.remove(&bucket);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts one failed authentication from `ip`; past the limit the answer becomes
    /// 429, and further attempts are refused until the budget refills.
    pub fn check_auth_failure(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(bucket) = ip.map(client_bucket) else {
            return Ok(());
        };
        if self.auth_failures.len() > MAX_TRACKED_CLIENTS {
            self.auth_failures.retain_recent();
        }
        let Err(not_until) = self.auth_failures.check_key(&bucket) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut blocked = self.blocked.lock();
        if blocked.len() >= MAX_TRACKED_CLIENTS {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        if blocked.len() < MAX_TRACKED_CLIENTS {
            blocked.insert(bucket, Instant::now() + wait);
        }
        Err(retry_after(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_client_is_refused_before_lookup_and_ipv6_counts_by_slash_64() {
        let limits = RateLimits::new(None, NonZeroU32::new(2).unwrap());
        let first: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8:0:1:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(limits.check_not_blocked(Some(first)).is_ok());
        assert!(limits.check_auth_failure(Some(first)).is_ok());
        assert!(limits.check_auth_failure(Some(neighbour)).is_ok());
        let refused = limits.check_auth_failure(Some(first)).unwrap_err();
        assert_eq!(refused.status.as_u16(), 429);
        // The whole /64 is blocked now, before any lookup; another /64 is not.
        assert_eq!(
            limits
                .check_not_blocked(Some(neighbour))
                .unwrap_err()
                .status
                .as_u16(),
            429
        );
        assert!(limits.check_not_blocked(Some(elsewhere)).is_ok());
        assert!(limits.check_auth_failure(Some(elsewhere)).is_ok());
    }
}
