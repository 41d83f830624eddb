//! # tollgate-chaos
//!
//! `cargo xtask chaos --seeds N [--start S]`: randomized, seed-reproducible histories of a small shop
//! (Sell.app purchases, disputes and subscriptions with renewals and cancellations; Stripe checkouts and
//! subscription updates, past-due and cancelled; duplicates and out-of-order copies of each; expiries;
//! admin grants and revokes, email verification, Discord links and unlinks) played against devstack with
//! seeded faults while the crons run, then crons until quiet, then the invariants checked. Unit tests of
//! the whole system find the bugs someone thought of; this finds the interleavings nobody did.
//!
//! - [`history`]: the generator and the printable, replayable form of a history.
//! - [`invariants`]: the rules every final state must satisfy (pure, tested on their own).
//! - [`runner`]: one history against a fresh devstack, in-process, on the injected clock.

pub mod history;
pub mod invariants;
pub mod observe;
pub mod runner;

pub use history::History;
pub use runner::{run, run_with, Options, Outcome};

/// The command that replays one seed.
pub fn replay_command(seed: u64) -> String {
    format!("cargo xtask chaos --seeds 1 --start {seed}")
}

/// A failing seed's report: what broke, the history, and how to run it again.
pub fn failure_report(history: &History, outcome: &Outcome) -> String {
    let mut text = format!("seed {} FAILED:\n", history.seed);
    for violation in &outcome.violations {
        text.push_str(&format!("  - {violation}\n"));
    }
    for note in &outcome.notes {
        text.push_str(&format!("  (note) {note}\n"));
    }
    text.push_str(&format!(
        "history (paste into History::parse for a regression test):\n{}\nreplay: {}\n",
        history.to_text(),
        replay_command(history.seed)
    ));
    text
}
