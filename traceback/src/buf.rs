//! Formatting without the allocator: a fixed-size text buffer that
//! `core::fmt` can write into, and a raw `write(2)` loop.
//!
//! `core::fmt` itself never allocates or locks when the arguments are
//! integers and strings, so `write!(buf, "PC={:#x}", pc)` is
//! async-signal-safe into a [`FixedBuf`]. What does not fit is dropped and
//! remembered ([`FixedBuf::overflowed`]), never a panic.

use core::fmt;

/// A text buffer of `N` bytes on the stack (or in a static).
pub struct FixedBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> FixedBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        FixedBuf { bytes: [0; N], len: 0, overflowed: false }
    }

    /// What has been written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// What has been written, as text (always whole UTF-8: writes that do
    /// not fit are dropped whole).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflowed = false;
    }

    /// Whether some write did not fit and was dropped.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() > N - self.len {
            self.overflowed = true;
            return Err(fmt::Error);
        }
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Writes all of `bytes` to `fd` with `write(2)`, retrying after signals
/// and short writes; gives up silently on any other error (there is no one
/// left to tell). Async-signal-safe.
pub fn write_fd(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}
