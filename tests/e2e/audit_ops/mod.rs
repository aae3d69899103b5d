//! Operating the audit log: the `action=` filter, retention from a sealed checkpoint,
//! the JSON-lines audit file, and a full disk.

mod action_filter;
mod audit_file;
mod disk_full;
mod retention;
mod support;
