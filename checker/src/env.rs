//! The one parser for every environment variable the project reads.
//!
//! Each variable's owner (`level.rs` here, the runtime's `sched/config.rs`
//! and `signal/level.rs`) says what its values mean; how a value is read —
//! what counts as a number, what an empty value means, how `GODEBUG` is
//! split, what an error says — is decided here, once:
//!
//! - **Set but empty is unset.** Go cannot tell them apart (`gogetenv`
//!   returns `""` for both), so `GOMAXPROCS=` is the default there; the
//!   same rule holds for this project's own variables.
//! - **A number is Go's number**: `strconv.ParseInt(s, 10, 32)`, the
//!   function Go's runtime reads `GOMAXPROCS` and every `GODEBUG` setting
//!   with (`runtime/proc.go` `schedinit`, `runtime/runtime1.go`
//!   `parsegodebug`). An optional `+` or `-`, then ASCII decimal digits;
//!   leading zeros are fine (`0004` is 4); no spaces, no `_`, no other
//!   base; the value must fit in 32 bits. [`int`] is exactly that (Rust's
//!   integer `from_str` has the same grammar).
//! - **`GODEBUG`** is a comma list of `key=value` items, read left to
//!   right; an item without `=` is skipped and keys that are not ours are
//!   Go's other settings, accepted and left alone. For a key of ours, a
//!   later item replaces an earlier one, as in Go; Go skips an item whose
//!   value is not a number, so `cgocheck=x,cgocheck=1` is 1 in Go and
//!   here. Go would also skip a malformed *last* item and silently keep the
//!   earlier value or the default; here the last item must be valid
//!   ([`godebug_int`]).
//! - **Errors** ([`EnvError`]) name the variable, quote the value, say what
//!   is accepted; the runtime prints `cgocheck: <error>` and exits with
//!   status 2 at start, before `main`.
//!
//! The rule for what Go tolerates: a value Go accepts is accepted with
//! Go's meaning; a value Go rejects or silently ignores is an error here
//! only when ignoring it would change behaviour silently.
//!
//! | variable | accepted | Go's rule | our rule, and why |
//! |---|---|---|---|
//! | `CGOCHECK` | a number 0, 1 or 2 (`01`, `+2` too) | none (Go's knob is `GODEBUG=cgocheck`) | Go's number syntax, as for `GODEBUG=cgocheck`; any other value is an error |
//! | `GODEBUG` `cgocheck=` | a number 0, 1 or 2 in the last `cgocheck=` item; earlier ones are overridden, whatever they hold | number items overwrite left to right, malformed ones are skipped; above 1 is fatal ("use GOEXPERIMENT=cgocheck2") | the last item decides (Go's result whenever it is valid); it must be 0, 1 or 2: malformed is an error (Go would silently keep the earlier value), out of range too (Go fails above 1, and below 0 is no level); 2 is level 2 (no build flag here) |
//! | `GODEBUG`, other keys | anything | Go's settings | accepted and ignored: they are not ours |
//! | `GOMAXPROCS` | a number; 1–1024 sets the Ps, below 1 means the default | a number above 0 sets the Ps, anything else (below 1, garbage, too big for 32 bits) means the default | below 1 is the default, as in Go (its documentation: only a positive number sets it); garbage is an error (a typo would quietly change how the program runs); above 1024 is an error (Go has no limit, we have 1024 Ps at most, and quietly using fewer would change behaviour) |
//! | `CGOCHECK_STACK_KB` | a number from 16 to 1048576 | none | Go's number syntax; out of range is an error |
//! | `GOTRACEBACK` | `none`, `single`, `all`, `system`, `crash`, `wer`, or a number 0 to 4294967295 (0 = none, 1 = all, 2 and above = system) | the names, `""` = single, numbers by `strconv.Atoi` within 32 unsigned bits as a level with "all"; `wer` is `crash` on Windows; anything else prints no traceback at all | the names and numbers with Go's meaning: `single` and `all` hide the runtime's own frames (call layer, callback switching, scheduler, std's panic machinery) as Go hides `runtime.*`, `system` and `crash` show them; `wer` is `crash` on every system; anything else is an error (Go would silently print nothing) |
//! | `CGOCHECK_SYMBOLIZER_WAIT_MS` | a number from 1 to 600000 | none | an internal test hook (how long a crashed process waits for its symboliser to start printing), read like the others |
//! | `GOGC` | `off`, or a number: 0 and above is the percentage, below 0 is `off` | the same (`runtime/mgcpacer.go` `readGOGC`: `off`, else `strconv.ParseInt(s, 10, 32)`); anything else silently means 100 | Go's values with Go's meaning; anything else (`OFF`, `200%`, `1e3`, too big for 32 bits) is an error: a typo would quietly run the collector at the default pace |
//! | `GOMEMLIMIT` | `off`, or a byte count ([`byte_count`]): a number of bytes (Go's syntax, not negative: `+8` is 8, `-0` is 0), optionally followed by `B`, `KiB`, `MiB`, `GiB` or `TiB`, at most 2^63−1 bytes; 9223372036854775807 is no limit | the same (`readGOMEMLIMIT`, `parseByteCount` in `runtime/string.go`); anything else is fatal ("malformed GOMEMLIMIT") | Go's rule, with our message: no `KB`/`MB` (decimal units are not Go's), no spaces, no fractions |
//! | `CGOCHECK_QUARANTINE` | a byte count as for `GOMEMLIMIT`, or a whole percentage from `0%` to `1000%` of the live heap | none | how much freed memory `CGOCHECK=2` holds back from reuse; default `25%` (at least 4 MiB); anything else is an error |
//! | `GODEBUG` `gctrace=` | a number in the last `gctrace=` item: 1 and above prints one line per collection on stderr, 0 and below prints nothing | numbers, left to right, malformed ones skipped; above 0 traces (above 1 adds Go-internal detail) | as for `cgocheck=`: the last item decides and must be a number; every number keeps Go's meaning (2 traces like 1: there is no extra detail here) |
//! | `GODEBUG` `asyncpreemptoff=` | a number in the last `asyncpreemptoff=` item: 1 and above turns preemption by signal off, 0 and below leaves it on | numbers, left to right, malformed ones skipped; above 0 turns it off (`runtime/runtime1.go` `debug.asyncpreemptoff`, read in `preemptone` and `suspendG`) | as for `gctrace=`: the last item decides and must be a number, with Go's meaning |
//!
//! (`CGOCHECK_SYMBOLIZER=1` is not a setting but the marker the crash
//! handler puts in its symboliser's environment; it is compared, not
//! parsed.)
//!
//! A new variable fits the same pieces: [`read`] for the value, [`int`]
//! or a parser of its own syntax written here (as [`byte_count`] is for
//! `GOMEMLIMIT`), [`godebug_int`] for a `GODEBUG` key, and an
//! [`EnvError`] with the accepted values. The collector's three
//! (`GOGC`, `GOMEMLIMIT`, `GODEBUG=gctrace`) and the preemption switch
//! (`GODEBUG=asyncpreemptoff`) are parsed here whole ([`gogc`],
//! [`gomemlimit`], [`gctrace`], [`asyncpreemptoff`]); the runtime's
//! `sched/config.rs` reads them at start.

use std::ops::RangeInclusive;
use thiserror::Error;

/// A value the project cannot accept.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{var}: {value:?} is not {expected}; accepted values are {accepted}")]
pub struct EnvError {
    /// Where the value came from: `GOMAXPROCS`, or `GODEBUG=cgocheck` for
    /// one key of the list.
    pub var: String,
    /// The value as found (lossily decoded if it was not UTF-8).
    pub value: String,
    /// What the value should have been: "a cgocheck level".
    pub expected: &'static str,
    /// The accepted values, in words.
    pub accepted: &'static str,
}

/// What a variable's values are, for its error message.
#[derive(Clone, Copy, Debug)]
pub struct Var {
    /// The variable's name.
    pub name: &'static str,
    /// What a value is: "a number of processors".
    pub expected: &'static str,
    /// The accepted values, in words.
    pub accepted: &'static str,
}

impl Var {
    /// The error for `value` of this variable.
    pub fn error(&self, value: &str) -> EnvError {
        self.error_as(self.name.to_owned(), value)
    }

    /// The error for `value` found under another label (a `GODEBUG` key).
    fn error_as(&self, var: String, value: &str) -> EnvError {
        EnvError { var, value: value.to_owned(), expected: self.expected, accepted: self.accepted }
    }
}

/// The value of `var.name` in this process's environment: `None` when it
/// is unset or empty, an error when it is not UTF-8.
pub fn read(var: &Var) -> Result<Option<String>, EnvError> {
    match std::env::var_os(var.name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|raw| var.error(&raw.to_string_lossy())),
    }
}

/// Go's `strconv.ParseInt(s, 10, 32)`: `None` when `s` is not a decimal
/// number that fits in 32 bits.
pub fn int(s: &str) -> Option<i32> {
    s.parse::<i32>().ok()
}

/// Go's `GOTRACEBACK` number: `strconv.Atoi(s)` (the same syntax, 64
/// bits) kept only when it fits in 32 unsigned bits.
pub fn atoi_u32(s: &str) -> Option<u32> {
    s.parse::<i64>().ok().and_then(|n| u32::try_from(n).ok())
}

/// `value` as a number in `range` (Go's syntax, [`int`]), or `var`'s error.
pub fn int_in(var: &Var, value: &str, range: RangeInclusive<i32>) -> Result<i32, EnvError> {
    int(value).filter(|n| range.contains(n)).ok_or_else(|| var.error(value))
}

/// The `key=value` items of a `GODEBUG` list, in order, as Go splits them
/// (items without `=` are skipped).
pub fn godebug_items(godebug: &str) -> impl Iterator<Item = (&str, &str)> {
    godebug.split(',').filter_map(|item| item.split_once('='))
}

/// The number a `GODEBUG` list sets for `key` (`None` when no item sets
/// it). The last item with the key and a non-empty value decides, and it
/// must be a number in `range` (else an error labelled `GODEBUG=<key>`).
/// Where that item is valid this is Go's result: Go reads left to right, a
/// later number replacing an earlier one, skipping malformed values — so
/// earlier items, whatever they hold, never count. Where it is not, Go
/// would silently keep an earlier value (or fail, above its range); here
/// it is an error.
pub fn godebug_int(godebug: &str, key: &str, var: &Var, range: RangeInclusive<i32>) -> Result<Option<i32>, EnvError> {
    let Some((_, last)) = godebug_items(godebug).filter(|(k, v)| *k == key && !v.is_empty()).last() else {
        return Ok(None);
    };
    match int(last) {
        Some(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(var.error_as(format!("GODEBUG={key}"), last)),
    }
}

/// `GOGC`, the collector's pace.
pub const GOGC: Var = Var {
    name: "GOGC",
    expected: "a GC percentage",
    accepted: "`off` (collect only when cgocheck::gc() is called), or an integer percentage \
               (Go's syntax, 32 bits): the next collection starts when the heap has grown by that \
               percentage over what the last one found live; below 0 is `off` (unset: 100)",
};

/// `GOMEMLIMIT`, the limit the heap must stay under.
pub const GOMEMLIMIT: Var = Var {
    name: "GOMEMLIMIT",
    expected: "a memory limit",
    accepted: "`off` (no limit, the default), or a number of bytes, optionally followed by one of \
               the units `B`, `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024; e.g. `512MiB`, `4GiB`, \
               `1000000`), at most 9223372036854775807 bytes; no spaces, fractions or decimal \
               units (`MB`)",
};

/// `GODEBUG`'s `gctrace=` item.
pub const GCTRACE: Var = Var {
    name: "GODEBUG",
    expected: "a gctrace setting",
    accepted: "integers: `gctrace=1` (one line per collection on stderr) or `gctrace=0` (none, \
               the default); above 1 is 1, below 0 is 0, as in Go",
};

/// `GODEBUG`'s `asyncpreemptoff=` item.
pub const ASYNCPREEMPTOFF: Var = Var {
    name: "GODEBUG",
    expected: "an asyncpreemptoff setting",
    accepted: "integers: `asyncpreemptoff=1` (no preemption by signal: a task is stopped for the \
               collector, or gives its P to others, only at a safepoint) or `asyncpreemptoff=0` \
               (preemption by signal, the default); above 1 is 1, below 0 is 0, as in Go",
};

/// The collector's pace from a `GOGC` value (`None`: unset or empty):
/// `Some(percent)`, or `None` when the collector is off. Unset is 100.
pub fn gogc(value: Option<&str>) -> Result<Option<u32>, EnvError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(Some(100)),
        Some("off") => Ok(None),
        Some(v) => match int(v) {
            Some(n) => Ok(u32::try_from(n).ok()),
            None => Err(GOGC.error(v)),
        },
    }
}

/// Go's `parseByteCount`: a byte count with an optional binary unit.
///
/// The grammar: a decimal number in Go's syntax ([`int`]'s, 64 bits, so
/// an optional sign) that is not negative, then nothing, `B`, or one of
/// `KiB`, `MiB`, `GiB`, `TiB` (1024 to 1024^4 bytes); the product must fit
/// in 63 bits. `-0` is 0 as in Go. `None` for anything else: an empty
/// string, a unit alone, `KB`/`MB` (decimal units), lower-case units,
/// spaces, fractions.
pub fn byte_count(s: &str) -> Option<u64> {
    let number = |digits: &str| digits.parse::<i64>().ok().and_then(|n| u64::try_from(n).ok());
    let (digits, unit) = if let Some(d) = s.strip_suffix("KiB") {
        (d, 1u64 << 10)
    } else if let Some(d) = s.strip_suffix("MiB") {
        (d, 1 << 20)
    } else if let Some(d) = s.strip_suffix("GiB") {
        (d, 1 << 30)
    } else if let Some(d) = s.strip_suffix("TiB") {
        (d, 1 << 40)
    } else if let Some(d) = s.strip_suffix('B') {
        (d, 1)
    } else {
        (s, 1)
    };
    // Go looks at the character before the unit: the number must end in a
    // digit (so `1iB`, `KiB` and `B` alone are refused by the parse).
    let n = number(digits)?;
    n.checked_mul(unit).filter(|&b| b <= i64::MAX as u64)
}

/// The memory limit from a `GOMEMLIMIT` value (`None`: unset or empty), in
/// bytes; `None` when there is none (unset, `off`, or Go's "no limit"
/// value, 9223372036854775807 bytes).
pub fn gomemlimit(value: Option<&str>) -> Result<Option<u64>, EnvError> {
    match value.filter(|v| !v.is_empty()) {
        None | Some("off") => Ok(None),
        Some(v) => match byte_count(v) {
            Some(n) if n == i64::MAX as u64 => Ok(None),
            Some(n) => Ok(Some(n)),
            None => Err(GOMEMLIMIT.error(v)),
        },
    }
}

/// `CGOCHECK_QUARANTINE`, how much freed memory `CGOCHECK=2` keeps from
/// reuse.
pub const QUARANTINE: Var = Var {
    name: "CGOCHECK_QUARANTINE",
    expected: "a quarantine size",
    accepted: "a number of bytes, optionally followed by one of the units `B`, `KiB`, `MiB`, `GiB`, `TiB` \
               (as GOMEMLIMIT: `64MiB`, `0`), or a whole percentage of the live heap from `0%` to `1000%` \
               (`25%`, the default, which never holds less than 4 MiB)",
};

/// The bound of the `CGOCHECK=2` quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarantineSize {
    /// At most this many bytes.
    Bytes(u64),
    /// At most this percentage of the live heap after the last
    /// collection, and never less than [`QUARANTINE_FLOOR`] (the default's
    /// floor: a small heap still catches a use of what it just freed).
    Percent(u32),
}

/// The least a percentage bound holds, in bytes.
pub const QUARANTINE_FLOOR: u64 = 4 << 20;

/// The quarantine bound from a `CGOCHECK_QUARANTINE` value (`None`: unset
/// or empty, the default `25%`).
pub fn quarantine(value: Option<&str>) -> Result<QuarantineSize, EnvError> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(QuarantineSize::Percent(25)) };
    if let Some(p) = v.strip_suffix('%') {
        return match int(p) {
            Some(n @ 0..=1000) => Ok(QuarantineSize::Percent(n as u32)),
            _ => Err(QUARANTINE.error(v)),
        };
    }
    byte_count(v).map(QuarantineSize::Bytes).ok_or_else(|| QUARANTINE.error(v))
}

/// Whether a `GODEBUG` list (`None`: unset or empty) turns the collector
/// trace on: its last `gctrace=` item is a number above 0 ([`godebug_int`]
/// decides which item counts; a malformed last one is an error labelled
/// `GODEBUG=gctrace`).
pub fn gctrace(godebug: Option<&str>) -> Result<bool, EnvError> {
    match godebug {
        None => Ok(false),
        Some(g) => Ok(godebug_int(g, "gctrace", &GCTRACE, i32::MIN..=i32::MAX)?.is_some_and(|n| n > 0)),
    }
}

/// Whether a `GODEBUG` list (`None`: unset or empty) turns preemption by
/// signal off: its last `asyncpreemptoff=` item is a number above 0
/// ([`godebug_int`] decides which item counts; a malformed last one is an
/// error labelled `GODEBUG=asyncpreemptoff`).
pub fn asyncpreemptoff(godebug: Option<&str>) -> Result<bool, EnvError> {
    match godebug {
        None => Ok(false),
        Some(g) => Ok(godebug_int(g, "asyncpreemptoff", &ASYNCPREEMPTOFF, i32::MIN..=i32::MAX)?.is_some_and(|n| n > 0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Var = Var { name: "V", expected: "a v", accepted: "0 to 9" };

    #[test]
    fn numbers_are_gos_parseint_base_10_bits_32() {
        for (s, n) in [("4", 4), ("+4", 4), ("0004", 4), ("-0", 0), ("-12", -12), ("2147483647", i32::MAX)] {
            assert_eq!(int(s), Some(n), "{s:?}");
        }
        for s in ["", "+", "-", " 4", "4 ", "4_0", "0x10", "1e3", "2147483648", "+-1", "٣", "4.0"] {
            assert_eq!(int(s), None, "{s:?}");
        }
    }

    #[test]
    fn traceback_numbers_are_atoi_within_u32() {
        assert_eq!(atoi_u32("+02"), Some(2));
        assert_eq!(atoi_u32("4294967295"), Some(u32::MAX));
        for s in ["-1", "4294967296", "", "two"] {
            assert_eq!(atoi_u32(s), None, "{s:?}");
        }
    }

    #[test]
    fn int_in_checks_the_range_and_names_the_variable() {
        assert_eq!(int_in(&V, "+09", 0..=9), Ok(9));
        let e = int_in(&V, "10", 0..=9).unwrap_err();
        assert_eq!(e.to_string(), "V: \"10\" is not a v; accepted values are 0 to 9");
    }

    #[test]
    fn godebug_last_valid_item_wins_other_keys_are_left_alone() {
        let g = |s| godebug_int(s, "k", &V, 0..=9);
        assert_eq!(g(""), Ok(None));
        assert_eq!(g("gctrace=1,madvdontneed=x,junk,,xk=3"), Ok(None));
        assert_eq!(g("k=1,other=2,k=3"), Ok(Some(3)));
        assert_eq!(g("k=x,k=1"), Ok(Some(1)), "Go skips the malformed item, a later one counts");
        assert_eq!(g("k=1,k="), Ok(Some(1)), "an empty value is no value");
        assert_eq!(g("k=01"), Ok(Some(1)));
        assert_eq!(g("k=10,k=1"), Ok(Some(1)), "Go too: only the final value counts");
    }

    #[test]
    fn godebug_errors_out_of_range_and_a_malformed_last_word() {
        let g = |s| godebug_int(s, "k", &V, 0..=9);
        let e = g("k=1,k=x").unwrap_err();
        assert_eq!((e.var.as_str(), e.value.as_str()), ("GODEBUG=k", "x"));
        let e = g("k=1,k=10").unwrap_err();
        assert_eq!((e.var.as_str(), e.value.as_str()), ("GODEBUG=k", "10"));
        assert!(g("k= 1").is_err());
    }

    #[test]
    fn gogc_is_off_or_gos_32_bit_number() {
        assert_eq!(gogc(None), Ok(Some(100)));
        assert_eq!(gogc(Some("")), Ok(Some(100)), "empty is unset");
        assert_eq!(gogc(Some("off")), Ok(None));
        for (v, want) in [("0", Some(0)), ("50", Some(50)), ("+200", Some(200)), ("0100", Some(100))] {
            assert_eq!(gogc(Some(v)), Ok(want), "{v:?}");
        }
        assert_eq!(gogc(Some("2147483647")), Ok(Some(i32::MAX as u32)));
        for v in ["-1", "-100", "-2147483648"] {
            assert_eq!(gogc(Some(v)), Ok(None), "{v:?}: below 0 is off, as in Go");
        }
    }

    #[test]
    fn gogc_errors_name_the_accepted_values() {
        for bad in ["OFF", "Off", "on", "200%", "1e3", " 100", "100 ", "2147483648", "1.5", "0x64", "1_00"] {
            let e = gogc(Some(bad)).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), ("GOGC", bad));
        }
        assert_eq!(
            gogc(Some("200%")).unwrap_err().to_string(),
            "GOGC: \"200%\" is not a GC percentage; accepted values are `off` (collect only when \
             cgocheck::gc() is called), or an integer percentage (Go's syntax, 32 bits): the next \
             collection starts when the heap has grown by that percentage over what the last one \
             found live; below 0 is `off` (unset: 100)"
        );
    }

    #[test]
    fn byte_counts_are_gos_parse_byte_count() {
        for (s, n) in [
            ("0", 0u64),
            ("1", 1),
            ("+7", 7),
            ("-0", 0),
            ("007B", 7),
            ("1B", 1),
            ("1KiB", 1024),
            ("3MiB", 3 << 20),
            ("+2GiB", 2 << 30),
            ("5TiB", 5 << 40),
            ("0TiB", 0),
            ("9223372036854775807", i64::MAX as u64),
            ("9223372036854775807B", i64::MAX as u64),
            ("8388607TiB", 8_388_607 << 40),
        ] {
            assert_eq!(byte_count(s), Some(n), "{s:?}");
        }
        for s in [
            "",
            "B",
            "iB",
            "KiB",
            "1iB",
            "1XiB",
            "1KB",
            "1MB",
            "1kib",
            "1kiB",
            "1 MiB",
            " 1",
            "1.5GiB",
            "-1",
            "-1KiB",
            "1KiBB",
            "0x10",
            "1_000",
            "8388608TiB",
            "9223372036854775808",
            "18014398509481984KiB",
            "1e9",
            "٣B",
        ] {
            assert_eq!(byte_count(s), None, "{s:?}");
        }
    }

    #[test]
    fn quarantine_values_and_errors() {
        assert_eq!(quarantine(None), Ok(QuarantineSize::Percent(25)));
        assert_eq!(quarantine(Some("")), Ok(QuarantineSize::Percent(25)), "empty is unset");
        assert_eq!(quarantine(Some("64MiB")), Ok(QuarantineSize::Bytes(64 << 20)));
        assert_eq!(quarantine(Some("0")), Ok(QuarantineSize::Bytes(0)));
        assert_eq!(quarantine(Some("1")), Ok(QuarantineSize::Bytes(1)));
        assert_eq!(quarantine(Some("50%")), Ok(QuarantineSize::Percent(50)));
        assert_eq!(quarantine(Some("0%")), Ok(QuarantineSize::Percent(0)));
        assert_eq!(quarantine(Some("1000%")), Ok(QuarantineSize::Percent(1000)));
        for bad in ["1001%", "-1%", "%", "25 %", "2.5%", "64MB", "lots", "-5", "off"] {
            let e = quarantine(Some(bad)).expect_err(bad);
            assert_eq!(e.var, "CGOCHECK_QUARANTINE");
            assert!(e.to_string().contains("percentage"), "{e}");
        }
    }

    #[test]
    fn gomemlimit_values_and_errors() {
        assert_eq!(gomemlimit(None), Ok(None));
        assert_eq!(gomemlimit(Some("")), Ok(None), "empty is unset");
        assert_eq!(gomemlimit(Some("off")), Ok(None));
        assert_eq!(gomemlimit(Some("9223372036854775807")), Ok(None), "Go's no-limit value");
        assert_eq!(gomemlimit(Some("512MiB")), Ok(Some(512 << 20)));
        assert_eq!(gomemlimit(Some("0")), Ok(Some(0)));
        assert_eq!(gomemlimit(Some("9223372036854775806B")), Ok(Some(i64::MAX as u64 - 1)));
        for bad in ["OFF", "512MB", "512 MiB", "1.5GiB", "-1", "lots", "100mib"] {
            let e = gomemlimit(Some(bad)).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), ("GOMEMLIMIT", bad));
        }
        assert_eq!(
            gomemlimit(Some("512MB")).unwrap_err().to_string(),
            "GOMEMLIMIT: \"512MB\" is not a memory limit; accepted values are `off` (no limit, the \
             default), or a number of bytes, optionally followed by one of the units `B`, `KiB`, \
             `MiB`, `GiB`, `TiB` (powers of 1024; e.g. `512MiB`, `4GiB`, `1000000`), at most \
             9223372036854775807 bytes; no spaces, fractions or decimal units (`MB`)"
        );
    }

    #[test]
    fn gctrace_is_the_last_gctrace_item_above_zero() {
        assert_eq!(gctrace(None), Ok(false));
        assert_eq!(gctrace(Some("cgocheck=2,madvdontneed=1")), Ok(false));
        for (g, on) in [
            ("gctrace=1", true),
            ("gctrace=0", false),
            ("gctrace=2", true),
            ("gctrace=-1", false),
            ("gctrace=+01", true),
            ("cgocheck=0,gctrace=1,x=y", true),
            ("gctrace=1,gctrace=0", false),
            ("gctrace=x,gctrace=1", true),
            ("gctrace=1,gctrace=", true),
        ] {
            assert_eq!(gctrace(Some(g)), Ok(on), "{g:?}");
        }
        for bad in ["gctrace=yes", "gctrace=1,gctrace=on", "gctrace= 1", "gctrace=99999999999"] {
            let e = gctrace(Some(bad)).unwrap_err();
            assert_eq!(e.var, "GODEBUG=gctrace", "{bad:?}");
        }
        assert_eq!(
            gctrace(Some("gctrace=on")).unwrap_err().to_string(),
            "GODEBUG=gctrace: \"on\" is not a gctrace setting; accepted values are integers: \
             `gctrace=1` (one line per collection on stderr) or `gctrace=0` (none, the default); \
             above 1 is 1, below 0 is 0, as in Go"
        );
    }

    #[test]
    fn asyncpreemptoff_is_the_last_asyncpreemptoff_item_above_zero() {
        assert_eq!(asyncpreemptoff(None), Ok(false));
        assert_eq!(asyncpreemptoff(Some("gctrace=1,cgocheck=2")), Ok(false));
        for (g, off) in [
            ("asyncpreemptoff=1", true),
            ("asyncpreemptoff=0", false),
            ("asyncpreemptoff=2", true),
            ("asyncpreemptoff=-1", false),
            ("asyncpreemptoff=+01", true),
            ("gctrace=1,asyncpreemptoff=1,x=y", true),
            ("asyncpreemptoff=1,asyncpreemptoff=0", false),
            ("asyncpreemptoff=x,asyncpreemptoff=1", true),
            ("asyncpreemptoff=1,asyncpreemptoff=", true),
            ("asyncpreemptoff", false),
            ("xasyncpreemptoff=1", false),
        ] {
            assert_eq!(asyncpreemptoff(Some(g)), Ok(off), "{g:?}");
        }
        for bad in [
            "asyncpreemptoff=x",
            "asyncpreemptoff=1,asyncpreemptoff=on",
            "asyncpreemptoff= 1",
            "asyncpreemptoff=99999999999",
        ] {
            let e = asyncpreemptoff(Some(bad)).unwrap_err();
            assert_eq!(e.var, "GODEBUG=asyncpreemptoff", "{bad:?}");
        }
        assert_eq!(
            asyncpreemptoff(Some("gctrace=1,asyncpreemptoff=x")).unwrap_err().to_string(),
            "GODEBUG=asyncpreemptoff: \"x\" is not an asyncpreemptoff setting; accepted values are \
             integers: `asyncpreemptoff=1` (no preemption by signal: a task is stopped for the \
             collector, or gives its P to others, only at a safepoint) or `asyncpreemptoff=0` \
             (preemption by signal, the default); above 1 is 1, below 0 is 0, as in Go"
        );
    }
}
