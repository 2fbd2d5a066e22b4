//! Liveness, one test per root kind the collector must see without C (the
//! kinds that involve C — a task blocked in C, a Pinner with C keeping the
//! pointer, a Handle kept by C, a callback on a C thread — are in
//! c-tests/tests/gc_roots_c.rs, where real C is compiled):
//!
//! - (a) a register of a task preempted in a tight loop with no safepoint;
//! - (c) the stack of a parked task;
//! - (d) a channel buffer;
//! - (e) a managed global (`managed_static!`);
//! - (i) a `Root`, kept in a plain static and in a `Box` owned by a thread
//!   that runs no task.
//!
//! Each test builds an object (with a child reachable only through it, both
//! filled with patterns), puts its only reference in the root, collects 100
//! times checking that neither was freed, checks the patterns, then removes
//! the root and collects until both objects' cleanups have run: the second
//! half is what shows the first half observes freeing at all (see
//! tests/gc_util for how the tests keep addresses off the scanned stacks).
//! (a) also runs the same loop with the pointer *not* in the register and
//! requires the object to die while the task spins.
//!
//! Bad input: a task whose stack (live frame and dead words below it) is
//! full of words that look like heap addresses — freed slots and their
//! interiors, span tails, never-allocated slots and pages, the zero-sized
//! address, the heap's bounds — collects without harm; a cleanup that
//! panics is reported and later cleanups still run.
//!
//! Every test runs in a child process of its own (tests/sched_util
//! `child`), so no other test's tasks, stacks or collections are in the
//! picture, under a watchdog (`watched`) so a hung collection fails.

mod gc_util;
mod sched_util;

use cgocheck::{gc, managed_static, run_test, spawn, Chan, Gc, ManagedMemory, Region, Root};
use gc_util::*;
use sched_util::{child, in_child, is_child, text, watched};
use std::arch::asm;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

// ---- (a) a register of a task preempted in a tight loop ----

static SPINNING: AtomicBool = AtomicBool::new(false);
static SPIN_STOP: AtomicBool = AtomicBool::new(false);
static SPUN_TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

/// Allocates the object, publishes its tracker, and returns its address
/// hidden. Not inlined, so its frame (where the plain address was) is dead
/// when it returns, and the caller scrubs it.
#[inline(never)]
fn make_hidden(seed: u64) -> usize {
    let obj = make_obj(seed);
    let t = Tracked::new(obj);
    let h = t.hidden();
    *SPUN_TRACKED.lock().unwrap() = Some(t);
    h
}

/// Spins, with no safepoint, until `SPIN_STOP`, holding `hidden ^ key` in
/// one register all along: with `key == KEY` that is the object's address
/// (the register is its only reference), with `key == 0` it is the hidden
/// word (no reference at all). Sets `SPINNING` once the register is loaded.
/// Returns the register XORed back with `key`.
///
/// The preempted context is scanned whole (every GPR and the SIMD state
/// are saved on the task stack), so the other caller-saved registers and
/// xmm0-15 are zeroed first: what earlier code left in them (the
/// allocation's copies of the object's address) must not keep the control
/// object alive. Callee-saved registers keep the caller's values, which
/// hold no address (the caller only has the hidden word).
#[inline(never)]
fn spin_holding(hidden: usize, key: usize) -> usize {
    let mut p = hidden;
    // SAFETY: the asm reads two statics' bytes through valid pointers,
    // writes one byte of `SPINNING` (an AtomicBool, whose byte is 0 or 1),
    // touches no stack and changes only the registers it declares.
    unsafe {
        asm!(
            "xor eax, eax",                  // clear what earlier code left in scratch registers:
            "xor ecx, ecx",                  //   rax, rcx, rdx, rsi, rdi, r8-r11 (declared clobbered)
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xorps xmm0, xmm0",              // and the low 128 bits of xmm0-15 (declared clobbered)
            "xorps xmm1, xmm1",
            "xorps xmm2, xmm2",
            "xorps xmm3, xmm3",
            "xorps xmm4, xmm4",
            "xorps xmm5, xmm5",
            "xorps xmm6, xmm6",
            "xorps xmm7, xmm7",
            "xorps xmm8, xmm8",
            "xorps xmm9, xmm9",
            "xorps xmm10, xmm10",
            "xorps xmm11, xmm11",
            "xorps xmm12, xmm12",
            "xorps xmm13, xmm13",
            "xorps xmm14, xmm14",
            "xorps xmm15, xmm15",
            "xor {p}, {k}",                  // p = the address (key = KEY) or the hidden word (key = 0)
            "mov byte ptr [{spinning}], 1",  // tell the collector side we are in the loop
            "2:",
            "pause",                         // a spin-wait hint; not a safepoint
            "cmp byte ptr [{stop}], 0",      // asked to stop?
            "je 2b",                         // no: spin on, p untouched in its register
            "xor {p}, {k}",                  // hide p again before it leaves the register
            p = inout(reg) p,
            k = in(reg) key,
            spinning = in(reg) SPINNING.as_ptr(),
            stop = in(reg) SPIN_STOP.as_ptr(),
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack),
        );
    }
    p
}

/// Runs one spinning task that holds the object in a register (`held`) or
/// not; returns its tracker with the task still spinning.
fn start_spinner(seed: u64, held: bool) -> (Tracked, cgocheck::JoinHandle<()>) {
    SPINNING.store(false, Ordering::SeqCst);
    SPIN_STOP.store(false, Ordering::SeqCst);
    let h = spawn(move || {
        let hidden = make_hidden(seed);
        scrub_stack();
        let back = spin_holding(hidden, if held { KEY } else { 0 });
        assert_eq!(back, hidden, "the register changed while the task was preempted");
        if held {
            // SAFETY: the register kept the object alive (the test checks
            // its cleanup did not run before stopping the spin).
            let obj = unsafe { reveal(back) };
            check_obj(obj, seed, "(a) the object held in a preempted task's register");
        }
        scrub_stack();
    });
    while !SPINNING.load(Ordering::SeqCst) {
        cgocheck::sleep(Duration::from_millis(1));
    }
    let t = SPUN_TRACKED.lock().unwrap().take().expect("the spinner published its tracker");
    (t, h)
}

fn register_of_preempted_task() {
    // Control: the register holds no reference; the object dies while the
    // task spins (so the collector does stop the spinning task, and nothing
    // else keeps the object).
    let (t, h) = start_spinner(0xA0, false);
    // Its child may stay a while: the upper halves of the vector registers
    // (AVX, AVX-512), which the scan also sees, may hold a copy of its
    // address from the allocation; the parent's address never was there.
    t.wait_obj_freed("(a) control: an object no register holds");
    SPIN_STOP.store(true, Ordering::SeqCst);
    h.join();

    let (t, h) = start_spinner(0xA1, true);
    survive(&t, "(a) an object held only in a preempted task's register");
    SPIN_STOP.store(true, Ordering::SeqCst);
    h.join();
    t.wait_freed("(a) the object after the spinning task ended");
}

#[test]
fn root_register_of_preempted_task() {
    in_child("root_register_of_preempted_task", &[("GOMAXPROCS", "2")], register_of_preempted_task);
}

// ---- (c) a parked task ----

static WAKE: AtomicBool = AtomicBool::new(false);
static PARKED_TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

fn parked_task() {
    WAKE.store(false, Ordering::SeqCst);
    let h = spawn(|| {
        let obj = make_obj(0xC1);
        *PARKED_TRACKED.lock().unwrap() = Some(Tracked::new(obj));
        while !WAKE.load(Ordering::SeqCst) {
            cgocheck::park();
        }
        check_obj(obj, 0xC1, "(c) the object on a parked task's stack");
    });
    let t = loop {
        if let Some(t) = PARKED_TRACKED.lock().unwrap().take() {
            break t;
        }
        cgocheck::sleep(Duration::from_millis(1));
    };
    cgocheck::sleep(Duration::from_millis(10));
    survive(&t, "(c) an object only a parked task's stack holds");
    WAKE.store(true, Ordering::SeqCst);
    h.task().unpark();
    h.join();
    scrub_stack();
    t.wait_freed("(c) the object after its task ended");
}

#[test]
fn root_parked_task() {
    in_child("root_parked_task", &[], parked_task);
}

// ---- (d) a channel buffer ----

fn channel_buffer() {
    let ch: Chan<Gc<Obj>> = Chan::new(1);
    let tx = ch.clone();
    let t = in_task(move || {
        let obj = make_obj(0xD1);
        let t = Tracked::new(obj);
        tx.send(obj);
        t
    });
    assert_eq!(ch.len(), 1, "the object waits in the buffer");
    survive(&t, "(d) an object only a channel buffer holds");
    let rx = ch.clone();
    in_task(move || check_obj(rx.recv().expect("the buffered object"), 0xD1, "(d) the object from the channel"));
    t.wait_freed("(d) the object after it left the channel");
}

#[test]
fn root_channel_buffer() {
    in_child("root_channel_buffer", &[], channel_buffer);
}

// ---- (e) a managed global ----

managed_static! {
    /// The only reference to (e)'s object.
    static GLOBAL_OBJ: Gc<Obj> = Gc::null();
}

fn managed_global() {
    let t = in_task(|| {
        let obj = make_obj(0xE1);
        // SAFETY: no other task touches GLOBAL_OBJ now.
        unsafe { GLOBAL_OBJ.set(obj) };
        Tracked::new(obj)
    });
    survive(&t, "(e) an object only a managed global holds");
    in_task(|| check_obj(GLOBAL_OBJ.get(), 0xE1, "(e) the object in the managed global"));
    // SAFETY: as above.
    in_task(|| unsafe { GLOBAL_OBJ.set(Gc::null()) });
    t.wait_freed("(e) the object after the global was cleared");
}

#[test]
fn root_managed_global() {
    in_child("root_managed_global", &[], managed_global);
}

// ---- (i) a Root, in a plain static and in a Box on a plain thread ----

static STATIC_ROOT: Mutex<Option<Root<Gc<Obj>>>> = Mutex::new(None);

fn roots() {
    let t_static = in_task(|| {
        let obj = make_obj(0x11);
        *STATIC_ROOT.lock().unwrap() = Some(Root::new(obj));
        Tracked::new(obj)
    });
    // A thread that runs no task owns a boxed Root; it drops it when told.
    let (give, keep) = std::sync::mpsc::channel::<Box<Root<Gc<Obj>>>>();
    let (drop_tx, drop_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let root = keep.recv().expect("the boxed root");
        drop_rx.recv().expect("the signal to drop it");
        drop(root);
    });
    let t_box = in_task(move || {
        let obj = make_obj(0x12);
        let t = Tracked::new(obj);
        give.send(Box::new(Root::new(obj))).expect("the holder thread waits");
        t
    });
    for i in 0..CYCLES {
        gc();
        if i % 10 == 9 {
            t_static.assert_alive(&format!("(i) an object only a Root in a static holds, after {} collections", i + 1));
            t_box.assert_alive(&format!("(i) an object only a boxed Root on a plain thread holds, after {}", i + 1));
        }
    }
    in_task(|| check_obj(**STATIC_ROOT.lock().unwrap().as_ref().unwrap(), 0x11, "(i) the object in a static Root"));
    let boxed = t_box.hidden();
    in_task(move || {
        // SAFETY: the boxed Root still holds the object (dropped below).
        let obj = unsafe { reveal(boxed) };
        check_obj(obj, 0x12, "(i) the object in a boxed Root")
    });
    drop_tx.send(()).expect("the holder thread waits");
    // Not a blocking std join from a task (the runtime would not know this
    // thread is blocked): sleep until the holder is done.
    while !holder.is_finished() {
        cgocheck::sleep(Duration::from_millis(1));
    }
    holder.join().expect("the holder thread");
    t_box.wait_freed("(i) the object after the thread dropped its boxed Root");
    t_static.assert_alive("(i) the object in the static Root, after the other was freed");
    // Dropped on a task that ends: `Root::drop` moves the value into the
    // dropping frame (its destructor sees it alive), where a later frame of
    // this task could leave it for the scan.
    in_task(|| *STATIC_ROOT.lock().unwrap() = None);
    t_static.wait_freed("(i) the object after its static Root was dropped");
}

#[test]
fn root_root() {
    in_child("root_root", &[], roots);
}

// ---- bad input: garbage words that look like heap addresses ----

/// Addresses that are inside the heap's range but name no live object:
/// freed objects (their bases and interiors; the freed `Obj`s still hold
/// stale pointers to their freed children), never-allocated slots, span
/// tails, pages no span uses, the zero-sized address and the range's ends.
fn garbage_addresses() -> Vec<usize> {
    let freed: Vec<usize> = in_task(|| {
        let objs: Vec<Gc<Obj>> = (0..512).map(make_obj).collect();
        objs.iter().flat_map(|o| [o.addr(), o.child.addr()]).map(hide).collect()
    });
    let mut words = Vec::new();
    for _ in 0..3 {
        gc();
    }
    let dead = freed.iter().filter(|h| !is_live_object(unhide(**h))).count();
    assert!(dead * 2 >= freed.len(), "only {dead} of {} unreachable objects were freed", freed.len());
    for h in &freed {
        let a = unhide(*h);
        words.extend([a, a + 8, a + 24, a + 100, a + 127]);
    }
    // Tails and never-allocated slots: walk up from objects of several size
    // classes to the end of their spans. The arrays stay live in this task
    // (they are on its stack) while the walk looks at their spans.
    let arrays: Vec<cgocheck::GcSlice<u64>> =
        [13usize, 100, 300, 700, 1100, 1500, 2300, 3500].iter().map(|n| cgocheck::new_slice::<u64>(*n)).collect();
    let mut tails = 0;
    for s in &arrays {
        let mut a = s.as_ptr() as usize;
        for _ in 0..(64 << 10) / 8 {
            a += 8;
            match cgocheck::heap().region(a) {
                Region::Heap(_) | Region::Freed(_) => {}
                Region::Unallocated(o) => words.extend([o.base, a]),
                Region::SpanTail { span_base, span_end } => {
                    tails += 1;
                    words.extend([a, span_end - 8, (span_base + span_end) / 2]);
                    break;
                }
                _ => break,
            }
        }
    }
    std::hint::black_box(&arrays);
    let (lo, hi) = cgocheck::heap().reserved_range();
    words.extend([lo, lo + 8, hi - 8, hi, lo + (hi - lo) / 2, hi - (4096 * 1000), cgocheck::heap().zero_sized_addr()]);
    eprintln!("garbage: {} words, {dead} freed objects, {tails} span tails", words.len());
    words
}

/// Leaves `words` in the dead stack below the caller's frame.
#[inline(never)]
fn leave_below(words: &[usize]) {
    let mut arr = [0usize; 4096];
    for (i, w) in arr.iter_mut().enumerate() {
        *w = words[i % words.len()];
    }
    std::hint::black_box(&mut arr);
}

fn garbage_on_stacks() {
    let words = garbage_addresses();
    let live = in_task(|| Tracked::new(make_obj(0xBAD)));
    let live_hidden = live.hidden();
    let tasks: Vec<_> = (0..4)
        .map(|k| {
            let words = words.clone();
            spawn(move || {
                // SAFETY: `live` is rooted by this task's stack below.
                let obj = unsafe { reveal(live_hidden) };
                let mut arr = [0usize; 4096];
                for (i, w) in arr.iter_mut().enumerate() {
                    *w = words[(i + k) % words.len()];
                }
                std::hint::black_box(&mut arr);
                for _ in 0..10 {
                    leave_below(&words);
                    gc();
                    cgocheck::yield_now();
                }
                std::hint::black_box(&arr);
                check_obj(obj, 0xBAD, "a live object among garbage roots");
            })
        })
        .collect();
    for t in tasks {
        t.join();
    }
    // The heap is sound afterwards: new objects in the freed slots keep
    // their contents through collections.
    in_task(|| {
        let objs = cgocheck::new_slice::<Gc<Obj>>(2000);
        for i in 0..objs.len() {
            // SAFETY: only this task sees `objs`.
            unsafe { objs.as_mut_slice()[i] = make_obj(0xF000 + i as u64) };
        }
        collect(5);
        for (i, o) in objs.as_slice().iter().enumerate() {
            check_obj(*o, 0xF000 + i as u64, "an object allocated after the garbage collections");
        }
    });
    live.wait_freed("the live object after its tasks ended");
}

#[test]
fn garbage_roots_do_not_crash_the_collector() {
    in_child("garbage_roots_do_not_crash_the_collector", &[], garbage_on_stacks);
}

// ---- bad input: a cleanup that panics ----

fn panicking_cleanup() {
    let ran = std::sync::Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    in_task(move || {
        cgocheck::add_cleanup(make_leaf(1), flag, |f| {
            f.store(true, Ordering::SeqCst);
            panic!("cleanup boom: on purpose");
        });
    });
    let mut n = 0;
    while !ran.load(Ordering::SeqCst) {
        assert!(n < 5000, "the panicking cleanup never ran");
        gc();
        cgocheck::sleep(Duration::from_millis(2));
        n += 1;
    }
    // The runtime goes on: allocation, collection and later cleanups work.
    let t = in_task(|| Tracked::new(make_obj(0xC0)));
    t.wait_freed("an object whose cleanup comes after a cleanup that panicked");
    eprintln!("after the panicking cleanup: the runtime went on");
}

#[test]
fn a_panicking_cleanup_is_reported_and_the_runtime_goes_on() {
    let name = "a_panicking_cleanup_is_reported_and_the_runtime_goes_on";
    if is_child() {
        watched(name, || run_test(panicking_cleanup));
        return;
    }
    let out = child(name, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"), "{}", text(&out));
    assert!(err.contains("cleanup boom: on purpose"), "the cleanup's panic is reported:\n{}", text(&out));
    assert!(err.contains("the runtime went on"), "{}", text(&out));
}
