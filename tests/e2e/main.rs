//! End to end: the real `coffer` binary on an ephemeral loopback port with a temporary
//! data directory, driven by a real HTTP client (see `common`). `api` is the contract
//! of API.md, `access` the 403 row and everything around it, `reliability` crashes,
//! races, hostile input and bad configuration, `cli` the `coffer` client commands
//! (the binary as the client of a real server), `ops` backups, restores and master key
//! rotation (the operator's commands against real servers and data directories).

mod common;

mod access;
mod api;
mod audit_ops;
mod cli;
mod ops;
mod phase_clients;
mod reliability;
