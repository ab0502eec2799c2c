//! Process memory: the binary's allocator and giving freed memory back to the system.
//!
//! `audit` and `run` want different allocators. `audit` allocates millions of small,
//! short-lived objects and exits: mimalloc makes it ≈ 1.3× faster than the system
//! allocator. `run` is long-lived and holds a steady set of objects through rounds that
//! allocate and free a lot: with mimalloc its resident memory settled ≈ 30 % higher than
//! with glibc's allocator plus an occasional `malloc_trim` (bench/RESULTS.md, scenario 6).
//! [`Allocator`] is mimalloc until [`prefer_system_allocator`] is called (first thing in
//! `prodready run`), then the system allocator; every pointer is freed by the allocator
//! that owns it, whichever is current.
//!
//! Once `run` switched to the system allocator, [`Allocator`] also counts the bytes it hands
//! out and takes back ([`heap`]), process-wide and per thread ([`measure`]): the operator's
//! heap profile (`/debug/memory`, bench/RESULTS.md) is read from these counters, so it costs
//! no profiler and runs in the shipped binary. `audit` (mimalloc) is not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static SYSTEM: AtomicBool = AtomicBool::new(false);
/// Bytes of live system-allocator blocks handed out through [`Allocator`] (requested sizes).
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest `LIVE` since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Bytes allocated minus bytes freed on this thread (system allocator only).
    static NET: Cell<isize> = const { Cell::new(0) };
}

fn counted(grew: usize, shrank: usize) {
    if grew >= shrank {
        let d = grew - shrank;
        let live = LIVE.fetch_add(d, Ordering::Relaxed) + d;
        PEAK.fetch_max(live, Ordering::Relaxed);
    } else {
        LIVE.fetch_sub(shrank - grew, Ordering::Relaxed);
    }
    // `try_with`: a thread being torn down frees blocks after its locals are gone.
    let _ = NET.try_with(|n| {
        n.set(
            n.get()
                .wrapping_add(grew.cast_signed())
                .wrapping_sub(shrank.cast_signed()),
        );
    });
}

/// The system-allocator heap as counted by [`Allocator`]: live bytes now and the peak since
/// the last [`reset_peak`]. `None` when nothing is counted (no counting allocator in this
/// binary, or `audit`'s mimalloc).
pub fn heap() -> Option<(usize, usize)> {
    let live = LIVE.load(Ordering::Relaxed);
    (cfg!(feature = "mimalloc") && SYSTEM.load(Ordering::Relaxed) && live > 0)
        .then(|| (live, PEAK.load(Ordering::Relaxed)))
}

/// Starts a new peak at the current live bytes.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Runs `f` and returns its result with the bytes this thread allocated minus those it freed
/// meanwhile: what the result holds on the heap when `f` builds a value from borrowed data
/// (e.g. a `clone`). 0 when nothing is counted.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, isize) {
    let before = NET.with(Cell::get);
    let r = f();
    (r, NET.with(Cell::get).wrapping_sub(before))
}

/// The heap bytes a deep copy of `value` holds (its `Clone` allocations; capacity slack of the
/// original is not seen). 0 when nothing is counted.
pub fn deep_size<T: Clone>(value: &T) -> usize {
    let (copy, bytes) = measure(|| value.clone());
    drop(copy);
    bytes.max(0).cast_unsigned()
}

/// From now on, new allocations come from the system allocator (memory already taken from
/// mimalloc is still returned to it), tuned for a long-running process ([`tune_system_allocator`]).
pub fn prefer_system_allocator() {
    tune_system_allocator();
    SYSTEM.store(true, Ordering::Relaxed);
}

/// glibc's allocator, set for a process that holds a steady heap for days: at most two arenas
/// (by default up to 8 per core, each keeping its own free memory: a block freed by another
/// thread's arena cannot serve this one), and blocks of 256 KiB or more (LIST pages, response
/// bodies) always in their own mapping, returned to the system when freed (by default the
/// threshold climbs after the first such free, and later large blocks land in the arenas,
/// where they fragment). Measured in bench/RESULTS.md (issue 18). A no-op elsewhere.
pub fn tune_system_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // malloc.h
        const M_MMAP_THRESHOLD: core::ffi::c_int = -3;
        const M_ARENA_MAX: core::ffi::c_int = -8;
        unsafe extern "C" {
            fn mallopt(param: core::ffi::c_int, value: core::ffi::c_int) -> core::ffi::c_int;
        }
        // SAFETY: glibc's mallopt takes plain integers and locks what it changes.
        unsafe {
            mallopt(M_ARENA_MAX, 2);
            mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

/// The process's global allocator (see the module documentation).
#[cfg(feature = "mimalloc")]
#[derive(Debug, Default)]
pub struct Allocator;

#[cfg(feature = "mimalloc")]
mod owned {
    unsafe extern "C" {
        /// Part of mimalloc's public API (`mimalloc.h`): whether `p` lies in memory mimalloc
        /// reserved. Exact for every pointer a live allocation can have: mimalloc's segments
        /// and arenas are mappings of their own, which no system allocation can share.
        pub(super) fn mi_is_in_heap_region(p: *const core::ffi::c_void) -> bool;
    }
}

#[cfg(feature = "mimalloc")]
impl Allocator {
    fn owned_by_mimalloc(ptr: *mut u8) -> bool {
        // SAFETY: a read-only lookup in mimalloc's segment map; any pointer value is allowed.
        unsafe { owned::mi_is_in_heap_region(ptr.cast()) }
    }
}

// SAFETY: every method forwards to a correct allocator; each pointer is freed or resized by
// the allocator that produced it (decided by `owned_by_mimalloc`), and a resize across
// allocators copies `min(old, new)` bytes into a fresh block of the current one.
#[cfg(feature = "mimalloc")]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if SYSTEM.load(Ordering::Relaxed) {
                let p = System.alloc(layout);
                if !p.is_null() {
                    counted(layout.size(), 0);
                }
                p
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if SYSTEM.load(Ordering::Relaxed) {
                let p = System.alloc_zeroed(layout);
                if !p.is_null() {
                    counted(layout.size(), 0);
                }
                p
            } else {
                mimalloc::MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by the allocator that owns it, with `layout`.
        unsafe {
            if Self::owned_by_mimalloc(ptr) {
                mimalloc::MiMalloc.dealloc(ptr, layout);
            } else {
                System.dealloc(ptr, layout);
                counted(0, layout.size());
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mine = Self::owned_by_mimalloc(ptr);
        let current_is_mimalloc = !SYSTEM.load(Ordering::Relaxed);
        // SAFETY: same-allocator resizes are forwarded; otherwise a fresh block of the
        // current allocator receives the bytes both sizes cover, then the old block goes
        // back to its owner.
        unsafe {
            if mine == current_is_mimalloc {
                return if mine {
                    mimalloc::MiMalloc.realloc(ptr, layout, new_size)
                } else {
                    let p = System.realloc(ptr, layout, new_size);
                    if !p.is_null() {
                        counted(new_size, layout.size());
                    }
                    p
                };
            }
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

/// Gives memory the system allocator holds but no longer uses back to the system (glibc's
/// `malloc_trim`, which also releases free pages inside its heaps). A no-op elsewhere.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> core::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim has no preconditions.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// What glibc's allocator holds, over all its arenas (`mallinfo2`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MallocStats {
    /// Bytes of the arenas' heaps (sbrk and per-thread heaps), in use or free.
    pub arena_bytes: usize,
    /// Bytes in blocks handed out, arena and mmapped blocks (with glibc's per-block header).
    pub in_use_bytes: usize,
    /// Bytes free inside the arenas: kept by the allocator, resident until trimmed or reused.
    pub free_bytes: usize,
    /// Bytes of blocks served by their own mmap (large allocations).
    pub mmapped_bytes: usize,
}

/// glibc's allocator statistics; `None` on other C libraries.
pub fn malloc_stats() -> Option<MallocStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[repr(C)]
        #[derive(Default)]
        struct MallInfo2 {
            arena: usize,
            ordblks: usize,
            smblks: usize,
            hblks: usize,
            hblkhd: usize,
            usmblks: usize,
            fsmblks: usize,
            uordblks: usize,
            fordblks: usize,
            keepcost: usize,
        }
        unsafe extern "C" {
            fn mallinfo2() -> MallInfo2;
        }
        // SAFETY: glibc's mallinfo2 (2.33+) has no preconditions and returns by value.
        let m = unsafe { mallinfo2() };
        Some(MallocStats {
            arena_bytes: m.arena,
            in_use_bytes: m.uordblks + m.hblkhd,
            free_bytes: m.fordblks,
            mmapped_bytes: m.hblkhd,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use super::*;

    #[test]
    fn blocks_go_back_to_the_allocator_that_made_them_after_the_switch() {
        let a = Allocator;
        let small = Layout::from_size_align(24, 8).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: layouts are non-zero; every block is written within its size and freed
        // once with its layout.
        unsafe {
            let before = a.alloc(small);
            assert!(!before.is_null());
            assert!(Allocator::owned_by_mimalloc(before));
            before.write_bytes(7, 24);

            prefer_system_allocator();
            let (after, counted) = measure(|| a.alloc_zeroed(small));
            assert!(!after.is_null());
            assert!(!Allocator::owned_by_mimalloc(after));
            // System blocks are counted, on this thread and process-wide.
            assert_eq!(counted, 24);
            assert!(heap().is_some_and(|(live, peak)| live >= 24 && peak >= live));

            // Growing a mimalloc block now moves it to the system allocator, bytes intact.
            let grown = a.realloc(before, small, 4096);
            assert!(!grown.is_null());
            assert!(!Allocator::owned_by_mimalloc(grown));
            assert!(
                std::slice::from_raw_parts(grown, 24)
                    .iter()
                    .all(|b| *b == 7)
            );

            let big = Layout::from_size_align(4096, 8).unwrap_or_else(|e| panic!("{e}"));
            let ((), freed) = measure(|| a.dealloc(grown, big));
            assert_eq!(freed, -4096);
            a.dealloc(after, small);
        }
        release_free_memory();
    }
}
