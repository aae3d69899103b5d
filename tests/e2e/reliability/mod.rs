//! Reliability: nothing acknowledged is lost, concurrent writers never break the
//! invariants, no input breaks the server, and bad configuration fails fast.
mod config;
mod crash;
mod durability;
mod hostile;
mod hostile_props;
mod races;
mod shutdown;
