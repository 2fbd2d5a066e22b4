//! How much checking a process does: `CGOCHECK=0`, `1` or `2`.
//!
//! Go reads `GODEBUG=cgocheck=N` once at start (and `GOEXPERIMENT=cgocheck2`
//! at build time). This project reads its own variable, `CGOCHECK`, and also
//! honours `GODEBUG=cgocheck=N` so that people who know Go's knob find it:
//!
//! | level | argument and result checks | store checks |
//! |---|---|---|
//! | `0` ([`Level::Off`]) | no | no |
//! | `1` ([`Level::Check`], the default) | yes | no |
//! | `2` ([`Level::Full`]) | yes | yes |
//!
//! Rules, decided here and tested below:
//! - Neither variable set: level 1.
//! - Every value that is set is validated, even one that the other variable
//!   overrides: a bad value is an error naming the variable and the accepted
//!   values (`0`, `1`, `2`), never a silent default. An empty value is a bad
//!   value too.
//! - Both set to valid levels: `CGOCHECK` wins. It is this project's own,
//!   more specific knob; `GODEBUG` is a comma list shared with other settings
//!   that a user may have exported for unrelated reasons.
//! - Inside `GODEBUG` (comma-separated `key=value` items) the last
//!   `cgocheck=` item counts, as in Go; other keys and items without `=` are
//!   ignored.
//!
//! [`Level::runs`] is the one place that says which [`Checks`] a level runs;
//! the runtime's glue consults it before calling the (ungated) checks.

use thiserror::Error;

/// Name of this project's variable.
pub const CGOCHECK: &str = "CGOCHECK";
/// Name of Go's variable, honoured for its `cgocheck=` item.
pub const GODEBUG: &str = "GODEBUG";

/// The checking level of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// `0`: no checks at all.
    Off = 0,
    /// `1`: pointer checks on arguments passed to C and on results returned
    /// to C (the default).
    #[default]
    Check = 1,
    /// `2`: also the store checks (managed pointers written into C memory).
    Full = 2,
}

/// A family of checks, gated by [`Level::runs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checks {
    /// `check_arg`, `check_pointer`, `check_result`: levels 1 and 2.
    Args,
    /// `check_ptr_write`, `check_memmove`, `check_slice_copy`,
    /// `check_typed_block`: level 2 only.
    Stores,
}

/// A bad level in the environment.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error(
    "{var}: {value:?} is not a cgocheck level; accepted values are `0` (no checks), \
     `1` (argument and result checks, the default) and `2` (also store checks)"
)]
pub struct LevelError {
    /// Where the value came from: `CGOCHECK` or `GODEBUG=cgocheck`.
    pub var: &'static str,
    /// The value as found (lossily decoded if it was not UTF-8).
    pub value: String,
}

impl Level {
    /// Whether this level runs the given family of checks.
    #[inline]
    pub const fn runs(self, checks: Checks) -> bool {
        match checks {
            Checks::Args => self as u8 >= Level::Check as u8,
            Checks::Stores => self as u8 >= Level::Full as u8,
        }
    }

    /// Parses one level value (`0`, `1` or `2`, nothing else); `var` names
    /// its source for the error.
    pub fn parse(value: &str, var: &'static str) -> Result<Level, LevelError> {
        match value {
            "0" => Ok(Level::Off),
            "1" => Ok(Level::Check),
            "2" => Ok(Level::Full),
            _ => Err(LevelError { var, value: value.to_owned() }),
        }
    }

    /// The level given the values of `CGOCHECK` and `GODEBUG` (`None` when
    /// unset), by the rules in this module's documentation.
    pub fn from_vars(cgocheck: Option<&str>, godebug: Option<&str>) -> Result<Level, LevelError> {
        let from_godebug = match godebug.and_then(godebug_cgocheck) {
            Some(v) => Some(Level::parse(v, "GODEBUG=cgocheck")?),
            None => None,
        };
        let from_cgocheck = match cgocheck {
            Some(v) => Some(Level::parse(v, CGOCHECK)?),
            None => None,
        };
        Ok(from_cgocheck.or(from_godebug).unwrap_or_default())
    }

    /// The level of this process's environment. A value that is not UTF-8
    /// is a bad value.
    pub fn from_env() -> Result<Level, LevelError> {
        let cgocheck = env_string(CGOCHECK);
        let godebug = env_string(GODEBUG);
        match (cgocheck, godebug) {
            (Err(value), _) => Err(LevelError { var: CGOCHECK, value }),
            (_, Err(value)) => Err(LevelError { var: GODEBUG, value }),
            (Ok(c), Ok(g)) => Level::from_vars(c.as_deref(), g.as_deref()),
        }
    }
}

/// `Ok(None)` when unset, `Err(lossy value)` when not UTF-8.
fn env_string(var: &str) -> Result<Option<String>, String> {
    match std::env::var_os(var) {
        None => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|v| v.to_string_lossy().into_owned()),
    }
}

/// The value of the last `cgocheck=` item of a `GODEBUG` list.
fn godebug_cgocheck(godebug: &str) -> Option<&str> {
    godebug.split(',').filter_map(|item| item.strip_prefix("cgocheck=")).next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_one() {
        assert_eq!(Level::from_vars(None, None), Ok(Level::Check));
        assert_eq!(Level::from_vars(None, Some("madvdontneed=1,gctrace=1")), Ok(Level::Check));
        assert_eq!(Level::default(), Level::Check);
    }

    #[test]
    fn accepts_exactly_zero_one_two() {
        for (s, l) in [("0", Level::Off), ("1", Level::Check), ("2", Level::Full)] {
            assert_eq!(Level::from_vars(Some(s), None), Ok(l));
            assert_eq!(Level::from_vars(None, Some(&format!("cgocheck={s}"))), Ok(l));
        }
        for bad in ["", "3", "-1", " 1", "1 ", "01", "on", "true", "２"] {
            let e = Level::from_vars(Some(bad), None).unwrap_err();
            assert_eq!(e, LevelError { var: "CGOCHECK", value: bad.into() });
            let e = Level::from_vars(None, Some(&format!("x=y,cgocheck={bad}"))).unwrap_err();
            assert_eq!(e.var, "GODEBUG=cgocheck");
        }
    }

    #[test]
    fn error_names_variable_and_accepted_values() {
        let msg = Level::from_vars(Some("7"), None).unwrap_err().to_string();
        assert!(msg.starts_with("CGOCHECK: \"7\" is not a cgocheck level"), "{msg}");
        for v in ["`0`", "`1`", "`2`"] {
            assert!(msg.contains(v), "{msg}");
        }
        let msg = Level::from_vars(None, Some("cgocheck=yes")).unwrap_err().to_string();
        assert!(msg.starts_with("GODEBUG=cgocheck: \"yes\""), "{msg}");
    }

    #[test]
    fn cgocheck_wins_over_godebug() {
        assert_eq!(Level::from_vars(Some("0"), Some("cgocheck=2")), Ok(Level::Off));
        assert_eq!(Level::from_vars(Some("2"), Some("cgocheck=0")), Ok(Level::Full));
        // ...but a bad value in the overridden variable is still an error.
        assert!(Level::from_vars(Some("1"), Some("cgocheck=9")).is_err());
        assert!(Level::from_vars(Some("9"), Some("cgocheck=1")).is_err());
    }

    #[test]
    fn godebug_last_item_counts_and_others_are_ignored() {
        assert_eq!(Level::from_vars(None, Some("cgocheck=0,gctrace=1,cgocheck=2")), Ok(Level::Full));
        assert_eq!(Level::from_vars(None, Some("gctrace=1,,junk,xcgocheck=0")), Ok(Level::Check));
        assert_eq!(Level::from_vars(None, Some("")), Ok(Level::Check));
    }

    #[test]
    fn levels_gate_families() {
        use Checks::*;
        assert!(!Level::Off.runs(Args) && !Level::Off.runs(Stores));
        assert!(Level::Check.runs(Args) && !Level::Check.runs(Stores));
        assert!(Level::Full.runs(Args) && Level::Full.runs(Stores));
    }
}
