//! `Root<T>`. (Owner: roots helper. Interface fixed; body to be written.)

/// Keeps the managed objects `T` refers to alive from memory the collector
/// does not scan (a `Box`, a `Vec`, a plain `static`, a thread that is not
/// a task).
pub struct Root<T> {
    value: Box<T>,
}

impl<T> Root<T> {
    /// Roots `value`.
    pub fn new(value: T) -> Root<T> {
        Root { value: Box::new(value) }
    }
}

impl<T> std::ops::Deref for Root<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}
