//! The soak: many SIGKILL-and-restart cycles under concurrent writes (the rounds of
//! `crash.rs`, killed sooner), each checking that no acknowledged write is lost and,
//! while the server is down, that `coffer audit verify` finds the chain intact.
//!
//! `#[ignore]`d: `scripts/soak.sh [CYCLES]` runs it (default 1000 cycles), `.ci/run`
//! with 20. `COFFER_SOAK_CYCLES` sets the number of cycles.

use std::process::Command;
use std::time::Instant;

use super::crash::kill_restart_rounds;

const DEFAULT_CYCLES: usize = 1000;

#[test]
#[ignore = "long: run by scripts/soak.sh"]
fn soak_sigkill_cycles_lose_nothing_and_keep_the_audit_chain() {
    let cycles = std::env::var("COFFER_SOAK_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let started = Instant::now();
    let mut verified_entries = 0;
    let seen = kill_restart_rounds(cycles, 50..400, |cycle, server| {
        let out = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["audit", "verify", "--data-dir"])
            .arg(&server.data_dir)
            .output()
            .expect("run coffer audit verify");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cycle {cycle}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        verified_entries = said
            .split_whitespace()
            .find_map(|word| word.parse::<u64>().ok())
            .unwrap_or(0);
    });
    eprintln!(
        "soak: {cycles} SIGKILL/restart cycles in {:.0} s: {} writes acknowledged, 0 lost, \
         {} secrets stored, audit chain intact every cycle ({verified_entries} entries at the \
         last); batches in flight at a kill: {} found whole, {} absent",
        started.elapsed().as_secs_f64(),
        seen.acknowledged,
        seen.stored,
        seen.in_flight.0,
        seen.in_flight.1
    );
    assert!(seen.acknowledged >= cycles, "too few writes acknowledged");
}
