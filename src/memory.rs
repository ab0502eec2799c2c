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

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

static SYSTEM: AtomicBool = AtomicBool::new(false);

/// From now on, new allocations come from the system allocator (memory already taken from
/// mimalloc is still returned to it).
pub fn prefer_system_allocator() {
    SYSTEM.store(true, Ordering::Relaxed);
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
                System.alloc(layout)
            } else {
                mimalloc::MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if SYSTEM.load(Ordering::Relaxed) {
                System.alloc_zeroed(layout)
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
                    System.realloc(ptr, layout, new_size)
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
            let after = a.alloc_zeroed(small);
            assert!(!after.is_null());
            assert!(!Allocator::owned_by_mimalloc(after));

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
            a.dealloc(grown, big);
            a.dealloc(after, small);
        }
        release_free_memory();
    }
}
