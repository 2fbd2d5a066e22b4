//! cgocheck runtime.
pub use cgocheck_checker as checker;
