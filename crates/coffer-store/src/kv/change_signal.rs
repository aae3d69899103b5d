//! A hint that another process may have committed to the keys a backend watches: what a
//! node waits on between its rounds of confirming its caches and reading other nodes'
//! changes. Only a hint: it may come when nothing changed, and a change it misses is
//! still seen by the next round, which comes on a timer anyway.

use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Counts the changes seen, and wakes whoever waits for the next.
#[derive(Debug, Default)]
pub struct ChangeSignal {
    seen: Mutex<u64>,
    changed: Condvar,
}

impl ChangeSignal {
    /// Something changed, or the watch was lost (so that the waiter reads through).
    pub fn notify(&self) {
        *self.seen.lock() += 1;
        self.changed.notify_all();
    }

    /// How many changes were seen so far.
    pub fn seen(&self) -> u64 {
        *self.seen.lock()
    }

    /// Waits until a change after the first `seen`, or for `timeout`; returns how many
    /// were seen then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let mut now = self.seen.lock();
        if *now == seen {
            self.changed.wait_for(&mut now, timeout);
        }
        *now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_change_wakes_the_waiter_before_its_timeout() {
        let signal = Arc::new(ChangeSignal::default());
        let seen = signal.seen();
        let notifier = Arc::clone(&signal);
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            notifier.notify();
        });
        assert_eq!(signal.wait(seen, Duration::from_secs(10)), seen + 1);
        assert!(started.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
    }

    #[test]
    fn a_change_made_before_the_wait_is_not_waited_for() {
        let signal = ChangeSignal::default();
        let seen = signal.seen();
        signal.notify();
        let started = Instant::now();
        assert_eq!(signal.wait(seen, Duration::from_secs(10)), seen + 1);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn without_a_change_the_wait_ends_at_its_timeout() {
        let signal = ChangeSignal::default();
        let started = Instant::now();
        assert_eq!(signal.wait(0, Duration::from_millis(30)), 0);
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
