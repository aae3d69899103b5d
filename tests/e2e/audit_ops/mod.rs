//! Operating the audit log: the `action=` filter, retention from a sealed checkpoint,
//! the JSON-lines audit file, and a full disk.

mod action_filter;
mod audit_file;
mod retention;
mod support;
