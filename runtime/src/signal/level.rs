//! `GOTRACEBACK`: how much a crash report shows, read once at start.
//!
//! | value | report |
//! |---|---|
//! | `none`, `0` | the signal (or panic) lines only, no frames |
//! | `single` (default) | plus the crashing task's (or thread's) frames, the runtime's own frames hidden |
//! | `all`, `1` | plus every other task, the runtime's own frames hidden |
//! | `system`, a number from `2` | as `all`, with the runtime's own frames |
//! | `crash`, `wer` | as `system`, then the process kills itself with `SIGABRT` (with whatever `SIGABRT` handler is installed then, else the default action, so the system can write a core file) instead of exiting with status 2 |
//!
//! These are Go's values with Go's meaning (`runtime1.go`, `setTraceback`):
//! Go's numbers 0, 1 and 2 are `none`, `all` and `system`, a larger number
//! is a level that also shows everything. The runtime's own frames are
//! what Go hides as `runtime.*` below `system`: the call layer
//! (`asmcgocall`, `cgocall`, the generated trampolines), callback switching,
//! the task and scheduler machinery, `catch_unwind` and std's panic
//! machinery (the list is `cgocheck_traceback::render`'s). Go takes `wer`
//! (Windows Error Reporting) as `crash` on Windows; it is `crash` here.
//! Numbers are read with the project's one parser (`cgocheck_checker::env`,
//! Go's `Atoi` syntax: `+1`, `01`), and set but empty is unset, as in Go.
//! Anything else, which Go would silently turn into "no traceback at all",
//! is an error at start: the program prints the accepted values and exits
//! with status 2 before `main`, rather than crashing later with a report
//! of a level nobody asked for.

use cgocheck_checker::env::{self, EnvError, Var};
use std::sync::atomic::{AtomicU8, Ordering};

/// A `GOTRACEBACK` level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Traceback {
    /// No frames.
    None = 0,
    /// The crashing task's or thread's frames.
    Single = 1,
    /// Every task's frames.
    All = 2,
    /// Every task's frames, the runtime's own included.
    System = 3,
    /// As `System`, then `SIGABRT` for a core file.
    Crash = 4,
}

/// The variable, for its error message.
const GOTRACEBACK: Var = Var {
    name: "GOTRACEBACK",
    expected: "a traceback level",
    accepted: "none, single (the default), all, system, crash, wer (as crash), or a number (0 none, 1 all, 2 and above system)",
};

impl Traceback {
    /// Parses a `GOTRACEBACK` value; empty is the default, `single`.
    pub fn parse(value: &str) -> Result<Traceback, EnvError> {
        match value {
            "none" => Ok(Traceback::None),
            "single" | "" => Ok(Traceback::Single),
            "all" => Ok(Traceback::All),
            "system" => Ok(Traceback::System),
            "crash" | "wer" => Ok(Traceback::Crash),
            other => match env::atoi_u32(other) {
                Some(0) => Ok(Traceback::None),
                Some(1) => Ok(Traceback::All),
                Some(_) => Ok(Traceback::System),
                None => Err(GOTRACEBACK.error(other)),
            },
        }
    }

    /// The level from the environment: `single` when `GOTRACEBACK` is unset.
    pub fn from_env() -> Result<Traceback, EnvError> {
        env::read(&GOTRACEBACK)?.map_or(Ok(Traceback::Single), |v| Traceback::parse(&v))
    }

    /// Whether reports at this level hide the runtime's own frames.
    pub fn hides_runtime_frames(self) -> bool {
        self < Traceback::System
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Traceback::Single as u8);

/// Reads `GOTRACEBACK` into the process's level; a bad value prints the
/// error and exits with status 2. Called once, at start.
pub(super) fn read_at_start() {
    match Traceback::from_env() {
        Ok(level) => LEVEL.store(level as u8, Ordering::Relaxed),
        Err(e) => {
            eprintln!("cgocheck: {e}");
            std::process::exit(2)
        }
    }
}

/// The process's traceback level. A plain atomic load: safe in a signal
/// handler.
pub fn traceback() -> Traceback {
    match LEVEL.load(Ordering::Relaxed) {
        0 => Traceback::None,
        1 => Traceback::Single,
        2 => Traceback::All,
        3 => Traceback::System,
        _ => Traceback::Crash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gos_values_with_gos_meaning_and_nothing_else() {
        for (v, level) in [
            ("none", Traceback::None),
            ("single", Traceback::Single),
            ("", Traceback::Single),
            ("all", Traceback::All),
            ("system", Traceback::System),
            ("crash", Traceback::Crash),
            ("wer", Traceback::Crash),
            ("0", Traceback::None),
            ("1", Traceback::All),
            ("+01", Traceback::All),
            ("2", Traceback::System),
            ("+02", Traceback::System),
            ("4294967295", Traceback::System),
        ] {
            assert_eq!(Traceback::parse(v), Ok(level), "{v:?}");
        }
        for bad in ["bogus", "ALL", "single ", "-1", "4294967296", "WER"] {
            let e = Traceback::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("GOTRACEBACK: {bad:?} is not a traceback level")), "{e}");
            assert!(e.contains("none, single (the default), all, system, crash"), "{e}");
        }
    }
}
