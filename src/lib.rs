//! Coffer: a self-hosted, encrypted secrets engine that speaks the Phase secrets API.
//!
//! This crate is the `coffer` binary; as a library it re-exports the engine
//! ([`store`]) and the HTTP front ([`server`]) for programs that embed them.

pub use coffer_server as server;
pub use coffer_store as store;
