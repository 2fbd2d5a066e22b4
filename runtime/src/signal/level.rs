//! `GOTRACEBACK`: how much a crash report shows, read once at start.
//!
//! | value | report |
//! |---|---|
//! | `none` | the signal (or panic) lines only, no frames |
//! | `single` (default) | plus the crashing task's (or thread's) frames |
//! | `all` | plus every other task |
//! | `crash` | as `all`, then the process kills itself with `SIGABRT` (default action, so the system can write a core file) instead of exiting with status 2 |
//!
//! Like `CGOCHECK`, an unknown or empty value is an error at start: the
//! program prints the accepted values and exits with status 2 before
//! `main`, rather than crashing later with a report of a level nobody
//! asked for.

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
    /// Every task's frames, then `SIGABRT` for a core file.
    Crash = 3,
}

/// The accepted values, for the error message.
const ACCEPTED: &str = "none, single (the default), all, crash";

impl Traceback {
    /// Parses a `GOTRACEBACK` value.
    pub fn parse(value: &str) -> Result<Traceback, String> {
        match value {
            "none" => Ok(Traceback::None),
            "single" => Ok(Traceback::Single),
            "all" => Ok(Traceback::All),
            "crash" => Ok(Traceback::Crash),
            other => Err(format!("GOTRACEBACK={other:?} is not a traceback level; accepted values: {ACCEPTED}")),
        }
    }

    /// The level from the environment: `single` when `GOTRACEBACK` is unset.
    pub fn from_env() -> Result<Traceback, String> {
        match std::env::var_os("GOTRACEBACK") {
            None => Ok(Traceback::Single),
            Some(v) => match v.to_str() {
                Some(s) => Traceback::parse(s),
                None => Err(format!("GOTRACEBACK={v:?} is not a traceback level; accepted values: {ACCEPTED}")),
            },
        }
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
        _ => Traceback::Crash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_levels_and_nothing_else() {
        assert_eq!(Traceback::parse("none"), Ok(Traceback::None));
        assert_eq!(Traceback::parse("single"), Ok(Traceback::Single));
        assert_eq!(Traceback::parse("all"), Ok(Traceback::All));
        assert_eq!(Traceback::parse("crash"), Ok(Traceback::Crash));
        for bad in ["", "1", "system", "ALL", "single "] {
            let e = Traceback::parse(bad).unwrap_err();
            assert!(e.contains("GOTRACEBACK") && e.contains("none, single (the default), all, crash"), "{e}");
        }
    }
}
