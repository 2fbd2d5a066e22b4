//! Free page runs: pages of the object range that no span uses, shared by
//! small spans and large objects.
//!
//! A run comes back here when a large object is freed (its pages given back
//! to the kernel at once) or when a small span is found all free after a
//! sweep (its slots were zeroed as they were freed). Every run therefore
//! reads as zero, and any request of a fitting size and alignment may take
//! it: a small span of any class or a large object, the rest split off.
//!
//! Runs are kept by address (to merge neighbours) and by size (best fit:
//! the smallest run that holds the request, the lowest address among equal
//! sizes). Each records whether its pages were given back to the kernel
//! (`released`) and when it became free: the sweep generation (collection
//! cycle) and the time; the scavenger (`gc/scavenge.rs`) releases runs free
//! for two cycles and a second, or for five seconds, so resident memory
//! follows the live heap.
//!
//! A run keeps the span that freed it published (its `owner`) so that a
//! dangling pointer into it still answers `Freed` until the pages are
//! reused; such a run is not merged until it is taken or the scavenger
//! retires its span (central.rs). Neighbours merge only when both are
//! ownerless and in the same released state, so the released byte count
//! stays exact.
//!
//! Bookkeeping is bounded by the pages: at most one entry per free page.

use super::span::Span;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Instant;

/// A free run this old is released even without collections.
pub const SCAVENGE_AFTER_MS: u64 = 5000;
/// A free run younger than this is kept however many collections ran: a
/// program that collects every few milliseconds reuses its free pages
/// soon, and releasing them would only make it fault them in again (the
/// kernel zeroing each page: measured as a fifth of binary-trees' time).
pub const SCAVENGE_MIN_MS: u64 = 1000;

/// Milliseconds since the first call (the clock of free runs).
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One free run.
#[derive(Clone, Copy)]
pub(crate) struct Run {
    /// Pages in the run.
    pub pages: usize,
    /// Given back to the kernel (its pages cost no memory).
    pub released: bool,
    /// Sweep generation in which it became free.
    pub cycle: u32,
    /// Milliseconds since the heap's first free run ([`now_ms`]) when it
    /// became free.
    pub at_ms: u64,
    /// The span that freed the run, still published over exactly it.
    pub owner: Option<&'static Span>,
}

/// Pages taken from a run.
pub(crate) struct Taken {
    /// First page index of the pages taken.
    pub page: usize,
    /// The span that owned the run they came from, to retire.
    pub owner: Option<&'static Span>,
}

/// The free runs (file comment). Lives behind the central lock.
pub(crate) struct Runs {
    /// By first page index.
    by_addr: BTreeMap<usize, Run>,
    /// (pages, first page index).
    by_size: BTreeSet<(usize, usize)>,
    /// Free pages in all runs.
    pub idle_pages: usize,
    /// Of those, given back to the kernel.
    pub released_pages: usize,
}

impl Runs {
    pub const fn new() -> Runs {
        Runs { by_addr: BTreeMap::new(), by_size: BTreeSet::new(), idle_pages: 0, released_pages: 0 }
    }

    fn add(&mut self, page: usize, run: Run) {
        self.by_size.insert((run.pages, page));
        self.idle_pages += run.pages;
        if run.released {
            self.released_pages += run.pages;
        }
        self.by_addr.insert(page, run);
    }

    fn remove(&mut self, page: usize) -> Run {
        let run = self.by_addr.remove(&page).expect("a listed run");
        self.by_size.remove(&(run.pages, page));
        self.idle_pages -= run.pages;
        if run.released {
            self.released_pages -= run.pages;
        }
        run
    }

    /// Files a free run, merged with ownerless neighbours in the same
    /// released state.
    pub fn insert(&mut self, mut page: usize, mut run: Run) {
        if run.owner.is_none() {
            let mergeable = |r: &Run| r.owner.is_none() && r.released == run.released;
            if let Some((&lp, l)) = self.by_addr.range(..page).next_back() {
                if lp + l.pages == page && mergeable(l) {
                    let l = self.remove(lp);
                    page = lp;
                    run.pages += l.pages;
                    run.cycle = run.cycle.max(l.cycle);
                    run.at_ms = run.at_ms.max(l.at_ms);
                }
            }
            if let Some(r) = self.by_addr.get(&(page + run.pages)).copied() {
                if mergeable(&r) {
                    self.remove(page + run.pages);
                    run.pages += r.pages;
                    run.cycle = run.cycle.max(r.cycle);
                    run.at_ms = run.at_ms.max(r.at_ms);
                }
            }
        }
        self.add(page, run);
    }

    /// Takes `npages` pages whose first page index is a multiple of
    /// `align_pages` from the best-fitting run; the rest of the run stays
    /// free (ownerless). None when no run fits.
    pub fn take(&mut self, npages: usize, align_pages: usize) -> Option<Taken> {
        let (page, start) = self.by_size.range((npages, 0)..).find_map(|&(pages, page)| {
            let start = page.next_multiple_of(align_pages);
            (start + npages <= page + pages).then_some((page, start))
        })?;
        let run = self.remove(page);
        let rest = Run { owner: None, ..run };
        if start > page {
            self.add(page, Run { pages: start - page, ..rest });
        }
        let end = page + run.pages;
        if start + npages < end {
            self.add(start + npages, Run { pages: end - start - npages, ..rest });
        }
        Some(Taken { page: start, owner: run.owner })
    }

    /// Removes and returns the runs to scavenge in generation `now` at
    /// time `now_ms`: runs not yet released, or still owned (their spans to
    /// retire), that became free at least two generations and
    /// [`SCAVENGE_MIN_MS`] ago, or [`SCAVENGE_AFTER_MS`] ago.
    /// The caller releases them and files them back with [`Runs::insert`].
    pub fn take_old(&mut self, now: u32, now_ms: u64) -> Vec<(usize, Run)> {
        let old: Vec<usize> = self
            .by_addr
            .iter()
            .filter(|(_, r)| {
                let age = now_ms.saturating_sub(r.at_ms);
                let old = (now.wrapping_sub(r.cycle) >= 2 && age >= SCAVENGE_MIN_MS) || age >= SCAVENGE_AFTER_MS;
                old && (!r.released || r.owner.is_some())
            })
            .map(|(&p, _)| p)
            .collect();
        old.into_iter().map(|p| (p, self.remove(p))).collect()
    }
}
