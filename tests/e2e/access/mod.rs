//! Access control end to end: who may do what, from where, how often, and the record
//! of it (see API.md: Authentication, Tokens, Audit).

mod admin_cli;
mod audit;
mod matrix;
mod network;
mod rate_limit;
pub(crate) mod support;
mod tls;
mod tokens;
