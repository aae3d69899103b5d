//! The Phase clients' protocol (API.md "Phase clients", PHASE-CLIENTS.md), spoken by a
//! client written here from that description with the same primitives the official
//! ones use.

mod client;
mod identity;
mod secrets;
mod writes;
