//! The `coffer` client commands, end to end: the real binary as the client of a real
//! server, each test with its own config directory (`XDG_CONFIG_HOME`) and working
//! directory.

mod diff;
mod export_import;
mod history;
mod login;
mod run;
mod secrets;
mod support;
mod watch;
