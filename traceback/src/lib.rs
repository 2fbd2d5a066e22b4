//! PC collection, unwinding from a signal context and DWARF symbolisation for
//! crash reports. Empty until the crash-report issue; it depends on neither
//! the runtime nor the checker.
