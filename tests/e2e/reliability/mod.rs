//! Reliability: nothing acknowledged is lost, concurrent writers never break the
//! invariants, no input breaks the server, and bad configuration fails fast.
mod at_rest;
mod config;
mod crash;
mod durability;
mod feed_waiters;
mod hardening;
mod hostile;
mod hostile_props;
mod races;
mod shutdown;
mod soak;
