//! Several Coffer nodes on one etcd cluster (DESIGN.md, "Several nodes on one
//! distributed store"): three etcd members and two Coffer nodes on loopback, each a real
//! process. Every rule of the single node holds across the two, and through the loss of
//! a member, of the leader and of quorum. Built with `--features etcd`; needs `etcd` on
//! PATH (a missing etcd fails the tests).

#[path = "../e2e/common/mod.rs"]
mod common;
mod etcd;
mod faults;
mod nodes;
mod rules;
