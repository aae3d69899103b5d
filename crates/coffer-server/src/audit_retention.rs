//! `--audit-retention`: a thread that trims audit entries older than the retention, in
//! the bounded batches of [`Store::trim_audit`], so writers never wait long for it.

use std::sync::Arc;
use std::time::Duration;

use coffer_store::{StorageState, Store, Timestamp};

/// How often the trimmer looks: a tenth of the retention, between these bounds.
const SHORTEST_INTERVAL: Duration = Duration::from_millis(100);
const LONGEST_INTERVAL: Duration = Duration::from_secs(60);

/// The interval between trims for a retention.
fn interval(retention: Duration) -> Duration {
    (retention / 10).clamp(SHORTEST_INTERVAL, LONGEST_INTERVAL)
}

/// Starts the thread that keeps `retention` of audit entries and trims the rest.
pub fn spawn_trimmer(store: Arc<Store>, retention: Duration) -> std::io::Result<()> {
    let retention_micros = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    std::thread::Builder::new()
        .name("audit-trimmer".into())
        .spawn(move || loop {
            // Trimming is a write too: while the disk is full it waits for the space.
            if store.storage_state() != StorageState::Writable {
                std::thread::sleep(interval(retention));
                continue;
            }
            let cutoff = Timestamp(
                Timestamp::now()
                    .as_micros()
                    .saturating_sub(retention_micros),
            );
            match store.trim_audit(cutoff) {
                Ok(trim) if trim.entries == 0 => {}
                Ok(trim) => tracing::info!(
                    trimmed = trim.entries,
                    checkpoint = trim.checkpoint.map(|cp| cp.seq),
                    "audit entries past retention removed"
                ),
                Err(err) => tracing::error!(error = %err, "trimming the audit log failed"),
            }
            std::thread::sleep(interval(retention));
        })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(interval(Duration::from_secs(1)), SHORTEST_INTERVAL);
        assert_eq!(interval(Duration::from_secs(100)), Duration::from_secs(10));
        assert_eq!(interval(Duration::from_secs(30 * 86_400)), LONGEST_INTERVAL);
    }
}
