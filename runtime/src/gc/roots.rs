//! Root enumeration. (Owner: roots helper. Interface fixed; body to be written.)

use super::mark::Marker;

/// Feeds every root to `m` (world stopped).
pub(crate) fn mark_roots(m: &mut Marker) {
    let _ = m;
}
