//! HTTP contract tests of the secrets, apps, environments, health and metrics routes,
//! against the real `coffer` binary. Each test reads like a line of API.md.

mod apps;
mod changes;
mod console;
mod conventions;
mod environments;
mod history;
mod idempotency;
mod ops;
mod overrides;
mod phase_apps;
mod phase_environments;
mod phase_secrets;
mod phase_words;
mod references;
mod secrets_errors;
mod secrets_success;
mod support;
mod upsert;
