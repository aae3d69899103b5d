//! Prometheus metrics: requests by route and status, latency histograms, store sizes.

use std::time::Duration;

use actix_web::http::Method;

use coffer_store::Store;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    auth_refused: IntCounterVec,
    latency: HistogramVec,
    store_records: IntGaugeVec,
    store_bytes: IntGaugeVec,
    feed_waiting: IntGauge,
}

/// Counts a changes feed request as waiting until dropped.
#[derive(Debug)]
pub struct Waiting<'a>(&'a IntGauge);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "coffer_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let auth_refused = IntCounterVec::new(
            Opts::new(
                "coffer_auth_refused_total",
                "Refused authentications by reason (the error code)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "coffer_http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let store_records = IntGaugeVec::new(
            Opts::new("coffer_store_records", "Records in the store by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let store_bytes = IntGaugeVec::new(
            Opts::new("coffer_store_disk_bytes", "Bytes the store uses on disk"),
            &["store"],
        )
        .expect("valid metric");
        let feed_waiting = IntGauge::new(
            "coffer_changes_waiting",
            "Changes feed requests held open until a change arrives",
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(auth_refused.clone()),
            Box::new(latency.clone()),
            Box::new(store_records.clone()),
            Box::new(store_bytes.clone()),
            Box::new(feed_waiting.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            auth_refused,
            latency,
            store_records,
            store_bytes,
            feed_waiting,
        }
    }

    /// Counts a changes feed request as waiting while the guard lives.
    pub fn feed_waiting(&self) -> Waiting<'_> {
        self.feed_waiting.inc();
        Waiting(&self.feed_waiting)
    }

    /// Counts one finished request. Labels come from fixed sets (a method from
    /// [`method_label`], a route pattern or `unmatched`), so no client can add series.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one refused authentication; `reason` is an error code from a fixed set.
    pub fn auth_refused(&self, reason: &'static str) {
        self.auth_refused.with_label_values(&[reason]).inc();
    }

    /// The text exposition, with store sizes read now.
    pub fn render(&self, store: &Store) -> String {
        let counts = store.counts();
        for (kind, n) in [
            ("apps", counts.apps),
            ("environments", counts.environments),
            ("secrets", counts.secrets),
            ("tokens", counts.tokens),
            ("audit_entries", counts.audit_entries),
        ] {
            self.store_records.with_label_values(&[kind]).set(n as i64);
        }
        if let Ok(bytes) = store.size_on_disk() {
            self.store_bytes
                .with_label_values(&["data"])
                .set(bytes as i64);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

/// A request method as a label: one of the methods HTTP defines, or `other` (actix
/// accepts any token as a method, up to the size of a request head).
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let made_up = Method::from_bytes("X".repeat(30_000).as_bytes()).unwrap();
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
