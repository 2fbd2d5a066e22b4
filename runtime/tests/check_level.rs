//! The level as a process sees it: read once from `CGOCHECK` /
//! `GODEBUG=cgocheck=N` at start, a bad value stopping the program (exit
//! status 2) before `main`, and the runtime's glue (`cgocheck::check`)
//! running each family of checks only at the levels that run it.
//!
//! The `unsafe` blocks pass the glue values this test just built (live,
//! of the described type, C memory from calloc): that is their safety
//! argument, stated once here.
//!
//! Each case runs this test binary again as a child with the environment
//! under test; the `child_*` tests do nothing unless `CHECK_LEVEL_CHILD` is
//! set.

mod check_util;

use cgocheck::check;
use cgocheck::checker::{CallSite, Hint, Level};
use cgocheck::{new, CType, Gc};
use check_util::CMem;
use std::process::{Command, Output};

fn child(test: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("CGOCHECK")
        .env_remove("GODEBUG")
        .env("CHECK_LEVEL_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn is_child() -> bool {
    std::env::var_os("CHECK_LEVEL_CHILD").is_some()
}

#[test]
fn a_bad_level_stops_the_program_at_start_with_status_2() {
    for (var, value, named) in [
        ("CGOCHECK", "3", "CGOCHECK: \"3\""),
        ("CGOCHECK", "0x1", "CGOCHECK: \"0x1\""),
        ("GODEBUG", "gctrace=1,cgocheck=on", "GODEBUG=cgocheck: \"on\""),
    ] {
        let out = child("child_does_nothing", &[(var, value)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.starts_with(&format!("cgocheck: {named} is not a cgocheck level")), "{stderr}");
        for accepted in ["`0`", "`1`", "`2`"] {
            assert!(stderr.contains(accepted), "{stderr}");
        }
        // Stopped before main: the test harness never started.
        assert!(!String::from_utf8_lossy(&out.stdout).contains("running"), "{out:?}");
    }
}

#[test]
fn child_does_nothing() {}

#[test]
fn the_glue_runs_each_family_at_its_levels() {
    for (env, level) in [
        (&[][..], 1),
        (&[("CGOCHECK", "0")][..], 0),
        (&[("CGOCHECK", "1")][..], 1),
        (&[("CGOCHECK", "2")][..], 2),
        (&[("GODEBUG", "cgocheck=0")][..], 0),
        (&[("GODEBUG", "cgocheck=2")][..], 2),
        (&[("CGOCHECK", "1"), ("GODEBUG", "cgocheck=2")][..], 1),
    ] {
        let level = level.to_string();
        let env = [env, &[("EXPECT_LEVEL", level.as_str())][..]].concat();
        let out = child("child_checks_at_its_level", &env);
        assert!(out.status.success(), "{env:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"), "{out:?}");
    }
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    p: Gc<i32>,
}

#[test]
fn child_checks_at_its_level() {
    if !is_child() {
        return;
    }
    cgocheck::run_test(|| {
        let want = std::env::var("EXPECT_LEVEL").unwrap();
        let level = check::level();
        assert_eq!((level as u8).to_string(), want);
        let (args, stores) = (level >= Level::Check, level == Level::Full);

        let site = CallSite::new("f1", 1);
        let s = new(S1 { p: new(0) });
        assert_eq!(unsafe { check::pointer(site, s.as_ptr(), Hint::Element) }.is_err(), args);
        assert!(check::value(site, &Gc::<S1>::null()).is_ok());
        assert_eq!(check::result("GoFn21", &s.p).is_err(), args);
        let ty = <Gc<S1>>::TYPE;
        assert_eq!(unsafe { check::arg(site, ty, (&s as *const Gc<S1>).cast()) }.is_err(), args);

        let c = CMem::new(64);
        let x = new(0u8);
        assert_eq!(check::ptr_write(c.ptr, x.as_ptr()).is_err(), stores);
        // `write` and `copy` write only what passed the check.
        let dst = c.cast::<Gc<u8>>();
        assert_eq!(unsafe { check::write(dst, x) }.is_err(), stores);
        assert_eq!(unsafe { dst.read() } == x, !stores);
        let dst = unsafe { dst.add(1) };
        assert_eq!(unsafe { check::copy(dst, &[x, x]) }.is_err(), stores);
        assert_eq!(unsafe { dst.add(1).read() } == x, !stores);
    });
}
