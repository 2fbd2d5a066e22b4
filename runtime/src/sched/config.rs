//! The scheduler's and the collector's environment variables, read once
//! when the runtime starts (the first `run`, `spawn` or allocation), with
//! the project's one parser (`cgocheck_checker::env`, whose table has every
//! variable's rule next to Go's):
//!
//! | variable | accepted values | default |
//! |---|---|---|
//! | `GOMAXPROCS` | a number from 1 to 1024; a number below 1 means the default, as in Go | the CPUs this process may use |
//! | `CGOCHECK_STACK_KB` | a number from 16 to 1048576 (KiB): each task's stack reservation | 16384 |
//! | `GOGC` | `off`, or a percentage (below 0 is `off`): the heap may grow by that much over the last live heap before the next collection (`gc/pacer.rs`) | 100 |
//! | `GOMEMLIMIT` | `off`, or bytes with an optional `B`/`KiB`/`MiB`/`GiB`/`TiB`: the heap's limit (`gc/pacer.rs`) | no limit |
//! | `CGOCHECK_QUARANTINE` | bytes as for `GOMEMLIMIT`, or `0%` to `1000%` of the live heap: what `CGOCHECK=2` holds back from reuse (`gc/quarantine.rs`) | `25%`, at least 4 MiB |
//! | `CGOCHECK_BARRIER` | `membarrier` (required: exit status 2 if the kernel refuses it), `fence`, or `auto`: how the rare sides of the C-call protocol reach Ms in C (`sched/crossing.rs`) | `auto`: `membarrier` where the kernel allows it, else `fence` |
//! | `GODEBUG` `gctrace=` | a number: above 0 prints one line per collection (`gc/stats.rs`) | 0 |
//! | `GODEBUG` `asyncpreemptoff=` | a number: above 0 turns preemption by signal off (`gc/preempt.rs`) | 0 |
//!
//! Numbers are Go's (`+4` and `0004` are 4); set but empty is unset. Any
//! other value stops the program with exit status 2 and a message naming
//! the variable and the accepted values. Go silently ignores a
//! `GOMAXPROCS` that is not a number; here a typo does not quietly change
//! how a program runs.

use super::crossing::Barrier;
use cgocheck_checker::env::{self, EnvError, Var};
use std::sync::OnceLock;
use std::time::Instant;

/// The most Ps there can be (Go's `_MaxGomaxprocs`).
pub const MAX_PROCS: usize = 1024;
/// Default usable size of a task stack, in KiB: 16 MiB of reserved address
/// space, of which a task's pages become resident only as it touches them
/// (heap/stack.rs), so the size costs no memory. Go grows a goroutine's
/// stack up to 1 GB by copying it, which Rust frames do not allow: the
/// reservation is the stack's limit, so it must hold what programs do.
/// 16 MiB holds 10,000 frames of up to 1.6 KiB, in a task and in a callback
/// from a C thread alike (a debug build's frame of a small recursive
/// function that matches an enum measured 1.4 KiB), and is twice Linux's
/// default for a C program's main thread (`ulimit -s`, 8 MiB), which C
/// code called from a task may expect. The bound from the other side is
/// address space: a million tasks reserve 16.25 TiB with their guards,
/// inside the heap's 32 TiB stack range (a quarter of x86_64's 128 TiB);
/// 64 MiB stacks would not fit. Each stack also costs the kernel one 4 KiB
/// page-table page (`VmPTE`, not resident memory) for its touched top.
pub const DEFAULT_STACK_KB: usize = 16 << 10;
/// Smallest task stack, in KiB: a panic and its unwinding must fit.
pub const MIN_STACK_KB: usize = 16;
/// Largest task stack, in KiB (1 GiB, Go's limit).
pub const MAX_STACK_KB: usize = 1 << 20;

/// What the environment asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    /// Initial number of Ps.
    pub gomaxprocs: usize,
    /// Usable bytes of a task stack from `spawn`.
    pub stack_size: usize,
    /// `GOGC`: the percentage the heap may grow by over the live heap
    /// before a collection starts; `None` when the collector is off
    /// (collections only by `gc()`).
    pub gogc: Option<u32>,
    /// `GOMEMLIMIT` in bytes; `None`: no limit.
    pub memory_limit: Option<u64>,
    /// `CGOCHECK_QUARANTINE`: the `CGOCHECK=2` quarantine's bound.
    pub quarantine: env::QuarantineSize,
    /// `GODEBUG=gctrace=1`: one line per collection on stderr.
    pub gctrace: bool,
    /// `GODEBUG=asyncpreemptoff=1`: no preemption signals; tasks stop for
    /// the collector and give up their P only at safepoints.
    pub async_preempt_off: bool,
    /// `CGOCHECK_BARRIER`: `None` for `auto`.
    pub barrier: Option<Barrier>,
    /// When the runtime read its environment: its start (gctrace's `@`
    /// times, the collector's CPU share).
    pub started: Instant,
}

const GOMAXPROCS: Var = Var {
    name: "GOMAXPROCS",
    expected: "a number of processors",
    accepted: "integers from 1 to 1024, or below 1 for the default (unset: the number of CPUs this process may use)",
};

const STACK_KB: Var = Var {
    name: "CGOCHECK_STACK_KB",
    expected: "a task stack size",
    accepted: "integers from 16 to 1048576 (KiB of stack reserved per task; unset: 16384)",
};

const BARRIER: Var = Var {
    name: "CGOCHECK_BARRIER",
    expected: "a barrier for the C-call protocol",
    accepted: "membarrier (required), fence, or auto (unset: auto, membarrier where the kernel allows it)",
};

/// Parses `CGOCHECK_BARRIER`; `None` (unset, empty or `auto`) lets the
/// runtime choose.
pub(crate) fn parse_barrier(value: Option<&str>) -> Result<Option<Barrier>, EnvError> {
    match value.filter(|v| !v.is_empty()) {
        None | Some("auto") => Ok(None),
        Some("membarrier") => Ok(Some(Barrier::Membarrier)),
        Some("fence") => Ok(Some(Barrier::Fence)),
        Some(v) => Err(BARRIER.error(v)),
    }
}

/// Parses `GOMAXPROCS`; `None` (unset or empty) or a number below 1 gives
/// `default`.
pub(crate) fn parse_gomaxprocs(value: Option<&str>, default: usize) -> Result<usize, EnvError> {
    let default = default.clamp(1, MAX_PROCS);
    match value.filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match env::int_in(&GOMAXPROCS, v, i32::MIN..=MAX_PROCS as i32)? {
            n if n < 1 => Ok(default),
            n => Ok(n as usize),
        },
    }
}

/// Parses `CGOCHECK_STACK_KB` into bytes; `None` (unset or empty) gives the
/// default.
pub(crate) fn parse_stack_kb(value: Option<&str>) -> Result<usize, EnvError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_STACK_KB << 10),
        Some(v) => Ok((env::int_in(&STACK_KB, v, MIN_STACK_KB as i32..=MAX_STACK_KB as i32)? as usize) << 10),
    }
}

/// The configuration, read from the environment on first use. A bad value
/// prints the error and exits with status 2.
pub(crate) fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let read = || -> Result<Config, EnvError> {
            Ok(Config {
                gomaxprocs: parse_gomaxprocs(env::read(&GOMAXPROCS)?.as_deref(), cpus)?,
                stack_size: parse_stack_kb(env::read(&STACK_KB)?.as_deref())?,
                gogc: env::gogc(env::read(&env::GOGC)?.as_deref())?,
                memory_limit: env::gomemlimit(env::read(&env::GOMEMLIMIT)?.as_deref())?,
                quarantine: env::quarantine(env::read(&env::QUARANTINE)?.as_deref())?,
                gctrace: env::gctrace(env::read(&env::GCTRACE)?.as_deref())?,
                async_preempt_off: env::asyncpreemptoff(env::read(&env::ASYNCPREEMPTOFF)?.as_deref())?,
                barrier: parse_barrier(env::read(&BARRIER)?.as_deref())?,
                started: Instant::now(),
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
        // Go's numbers, and Go's "below 1 is the default".
        for (v, n) in [("+4", 4), ("0004", 4), ("0", 8), ("-1", 8), ("", 8)] {
            assert_eq!(parse_gomaxprocs(Some(v), 8), Ok(n), "{v:?}");
        }
        for bad in ["two", " 2", "1025", "1.5", "4_0", "99999999999"] {
            let e = parse_gomaxprocs(Some(bad), 8).unwrap_err().to_string();
            assert!(e.starts_with("GOMAXPROCS: ") && e.contains("from 1 to 1024"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn barrier_values() {
        for (v, b) in [
            (None, None),
            (Some(""), None),
            (Some("auto"), None),
            (Some("fence"), Some(Barrier::Fence)),
            (Some("membarrier"), Some(Barrier::Membarrier)),
        ] {
            assert_eq!(parse_barrier(v), Ok(b), "{v:?}");
        }
        for bad in ["Fence", "mfence", "1", " fence"] {
            let e = parse_barrier(Some(bad)).unwrap_err().to_string();
            assert!(
                e.starts_with("CGOCHECK_BARRIER: ") && e.contains("membarrier (required), fence, or auto"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn stack_kb_values() {
        assert_eq!(parse_stack_kb(None), Ok(16 << 20));
        assert_eq!(parse_stack_kb(Some("")), Ok(16 << 20));
        assert_eq!(parse_stack_kb(Some("64")), Ok(64 << 10));
        assert_eq!(parse_stack_kb(Some("+064")), Ok(64 << 10));
        for bad in ["0", "8", "-64", "64k", "2000000"] {
            let e = parse_stack_kb(Some(bad)).unwrap_err().to_string();
            assert!(e.starts_with("CGOCHECK_STACK_KB: ") && e.contains("from 16 to 1048576"), "{bad:?}: {e}");
        }
    }
}
