//! Prometheus metrics: requests by route and status, latency histograms, store sizes.

use std::time::Duration;

use coffer_store::Store;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    store_records: IntGaugeVec,
    store_bytes: IntGaugeVec,
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
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(store_records.clone()),
            Box::new(store_bytes.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            latency,
            store_records,
            store_bytes,
        }
    }

    /// Counts one finished request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
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
