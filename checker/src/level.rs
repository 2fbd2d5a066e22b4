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
//! Rules, decided here and tested below (how values are read — Go's
//! number syntax, empty is unset, `GODEBUG`'s list — is `env.rs`'s, with
//! its table of every variable):
//! - Neither variable set: level 1.
//! - Each variable is read on its own and must be valid on its own, even
//!   when the other overrides it: a bad value is an error naming the
//!   variable and the accepted values (`0`, `1`, `2`), never a silent
//!   default. `01` and `+1` are 1, as `GODEBUG=cgocheck=01` is in Go.
//! - Both set to valid levels: `CGOCHECK` wins. It is this project's own,
//!   more specific knob; `GODEBUG` is a comma list shared with other settings
//!   that a user may have exported for unrelated reasons.
//! - Inside `GODEBUG` the last `cgocheck=` item counts, as in Go, and must
//!   be a level (Go skips a malformed one and keeps the earlier value);
//!   other keys are Go's settings and are left alone.
//!
//! [`Level::runs`] is the one place that says which [`Checks`] a level runs;
//! the runtime's glue consults it before calling the (ungated) checks.

use crate::env::{self, EnvError, Var};

/// `CGOCHECK`, this project's variable.
pub const CGOCHECK: Var = Var { name: "CGOCHECK", expected: "a cgocheck level", accepted: ACCEPTED };
/// `GODEBUG`, Go's variable, honoured for its `cgocheck=` item.
pub const GODEBUG: Var = Var { name: "GODEBUG", expected: "a cgocheck level", accepted: ACCEPTED };

const ACCEPTED: &str = "`0` (no checks), `1` (argument and result checks, the default) and `2` (also store checks)";

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

impl Level {
    /// Whether this level runs the given family of checks.
    #[inline]
    pub const fn runs(self, checks: Checks) -> bool {
        match checks {
            Checks::Args => self as u8 >= Level::Check as u8,
            Checks::Stores => self as u8 >= Level::Full as u8,
        }
    }

    fn from_number(n: i32) -> Level {
        match n {
            0 => Level::Off,
            1 => Level::Check,
            _ => Level::Full,
        }
    }

    /// The level given the values of `CGOCHECK` and `GODEBUG` (`None` when
    /// unset), by the rules in this module's documentation.
    pub fn from_vars(cgocheck: Option<&str>, godebug: Option<&str>) -> Result<Level, EnvError> {
        let from_godebug = match godebug {
            Some(g) => env::godebug_int(g, "cgocheck", &GODEBUG, 0..=2)?,
            None => None,
        };
        let from_cgocheck = match cgocheck.filter(|v| !v.is_empty()) {
            Some(v) => Some(env::int_in(&CGOCHECK, v, 0..=2)?),
            None => None,
        };
        Ok(from_cgocheck.or(from_godebug).map_or(Level::default(), Level::from_number))
    }

    /// The level of this process's environment. A value that is not UTF-8
    /// is a bad value.
    pub fn from_env() -> Result<Level, EnvError> {
        let cgocheck = env::read(&CGOCHECK)?;
        let godebug = env::read(&GODEBUG)?;
        Level::from_vars(cgocheck.as_deref(), godebug.as_deref())
    }
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
    fn accepts_zero_one_two_in_gos_number_syntax() {
        for (s, l) in
            [("0", Level::Off), ("1", Level::Check), ("2", Level::Full), ("01", Level::Check), ("+2", Level::Full)]
        {
            assert_eq!(Level::from_vars(Some(s), None), Ok(l));
            assert_eq!(Level::from_vars(None, Some(&format!("cgocheck={s}"))), Ok(l));
        }
        for bad in ["3", "-1", " 1", "1 ", "0x1", "on", "true", "２"] {
            let e = Level::from_vars(Some(bad), None).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), ("CGOCHECK", bad));
            let e = Level::from_vars(None, Some(&format!("x=y,cgocheck={bad}"))).unwrap_err();
            assert_eq!(e.var, "GODEBUG=cgocheck");
        }
    }

    #[test]
    fn empty_is_unset() {
        assert_eq!(Level::from_vars(Some(""), Some("cgocheck=2")), Ok(Level::Full));
        assert_eq!(Level::from_vars(None, Some("cgocheck=")), Ok(Level::Check));
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
        // Go skips the malformed item and honours the later one.
        assert_eq!(Level::from_vars(None, Some("cgocheck=x,cgocheck=1")), Ok(Level::Check));
        // Go would skip the malformed last item and keep 2: an error here.
        assert!(Level::from_vars(None, Some("cgocheck=2,cgocheck=x")).is_err());
    }

    #[test]
    fn levels_gate_families() {
        use Checks::*;
        assert!(!Level::Off.runs(Args) && !Level::Off.runs(Stores));
        assert!(Level::Check.runs(Args) && !Level::Check.runs(Stores));
        assert!(Level::Full.runs(Args) && Level::Full.runs(Stores));
    }
}
