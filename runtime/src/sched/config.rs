//! The scheduler's two environment variables, read once when the runtime
//! starts (the first `run` or `spawn`):
//!
//! | variable | accepted values | default |
//! |---|---|---|
//! | `GOMAXPROCS` | an integer from 1 to 1024 | the CPUs this process may use |
//! | `CGOCHECK_STACK_KB` | an integer from 16 to 1048576 (KiB) | 256 |
//!
//! Like `CGOCHECK`, any other value — `0`, a negative number, garbage, an
//! empty string — stops the program with exit status 2 and a message naming
//! the variable and the accepted values. Go silently ignores a bad
//! `GOMAXPROCS`; here a typo does not quietly change how a program runs.

use std::sync::OnceLock;

/// The most Ps there can be (Go's `_MaxGomaxprocs`).
pub const MAX_PROCS: usize = 1024;
/// Default usable size of a task stack, in KiB.
pub const DEFAULT_STACK_KB: usize = 256;
/// Smallest task stack, in KiB: a panic and its unwinding must fit.
pub const MIN_STACK_KB: usize = 16;
/// Largest task stack, in KiB (1 GiB).
pub const MAX_STACK_KB: usize = 1 << 20;

/// What the environment asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Initial number of Ps.
    pub gomaxprocs: usize,
    /// Usable bytes of a task stack from `spawn`.
    pub stack_size: usize,
}

/// Parses `GOMAXPROCS`; `None` (unset) gives `default`.
pub(crate) fn parse_gomaxprocs(value: Option<&str>, default: usize) -> Result<usize, String> {
    let Some(v) = value else { return Ok(default.clamp(1, MAX_PROCS)) };
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_PROCS).contains(&n) => Ok(n),
        _ => Err(format!(
            "GOMAXPROCS: {v:?} is not a number of processors; accepted values are integers from 1 to {MAX_PROCS} \
             (unset: the number of CPUs this process may use)"
        )),
    }
}

/// Parses `CGOCHECK_STACK_KB` into bytes; `None` (unset) gives the default.
pub(crate) fn parse_stack_kb(value: Option<&str>) -> Result<usize, String> {
    let Some(v) = value else { return Ok(DEFAULT_STACK_KB << 10) };
    match v.parse::<usize>() {
        Ok(n) if (MIN_STACK_KB..=MAX_STACK_KB).contains(&n) => Ok(n << 10),
        _ => Err(format!(
            "CGOCHECK_STACK_KB: {v:?} is not a task stack size; accepted values are integers from {MIN_STACK_KB} \
             to {MAX_STACK_KB} (KiB; unset: {DEFAULT_STACK_KB})"
        )),
    }
}

/// Reads a variable; a value that is not UTF-8 reads as a string that no
/// parser accepts, so it is reported rather than treated as unset.
fn var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.into_string().unwrap_or_else(|raw| format!("{raw:?}")))
}

/// The configuration, read from the environment on first use. A bad value
/// prints the error and exits with status 2.
pub(crate) fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let read = || -> Result<Config, String> {
            Ok(Config {
                gomaxprocs: parse_gomaxprocs(var("GOMAXPROCS").as_deref(), cpus)?,
                stack_size: parse_stack_kb(var("CGOCHECK_STACK_KB").as_deref())?,
            })
        };
        read().unwrap_or_else(|e| {
            eprintln!("cgocheck: {e}");
            std::process::exit(2)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gomaxprocs_values() {
        assert_eq!(parse_gomaxprocs(None, 8), Ok(8));
        assert_eq!(parse_gomaxprocs(None, 5000), Ok(MAX_PROCS));
        assert_eq!(parse_gomaxprocs(Some("3"), 8), Ok(3));
        assert_eq!(parse_gomaxprocs(Some("1024"), 8), Ok(1024));
        for bad in ["0", "-1", "", "two", " 2", "1025", "1.5"] {
            let e = parse_gomaxprocs(Some(bad), 8).unwrap_err();
            assert!(e.starts_with("GOMAXPROCS: ") && e.contains("from 1 to 1024"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn stack_kb_values() {
        assert_eq!(parse_stack_kb(None), Ok(256 << 10));
        assert_eq!(parse_stack_kb(Some("64")), Ok(64 << 10));
        for bad in ["0", "8", "-64", "", "64k", "2000000"] {
            let e = parse_stack_kb(Some(bad)).unwrap_err();
            assert!(e.starts_with("CGOCHECK_STACK_KB: ") && e.contains("from 16 to 1048576"), "{bad:?}: {e}");
        }
    }
}
