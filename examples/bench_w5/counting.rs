//! The counting allocator: allocations, bytes and backtraces while a measurement asks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Counts allocations while `COUNTING` is on (on every thread, or only on the thread that
/// started counting); records a backtrace of each while `TRACING` is.
pub(crate) struct Counting;

pub(crate) static COUNTING: AtomicBool = AtomicBool::new(false);
/// Whether every thread's allocations count, or only those of threads marked `COUNTED`.
pub(crate) static ALL_THREADS: AtomicBool = AtomicBool::new(false);
pub(crate) static TRACING: AtomicBool = AtomicBool::new(false);
pub(crate) static ALLOCS: AtomicU64 = AtomicU64::new(0);
pub(crate) static REALLOCS: AtomicU64 = AtomicU64::new(0);
pub(crate) static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed while counting.
pub(crate) static NET_BYTES: AtomicI64 = AtomicI64::new(0);
pub(crate) static SITES: Mutex<Vec<(usize, Backtrace)>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while this thread records a backtrace: its own allocations are not traced.
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
    /// Set on the thread that counts its own allocations.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

impl Counting {
    fn counting() -> bool {
        COUNTING.load(Ordering::Relaxed)
            && (ALL_THREADS.load(Ordering::Relaxed) || COUNTED.with(Cell::get))
    }

    fn counted(size: usize) {
        if Self::counting() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(size as u64, Ordering::Relaxed);
            NET_BYTES.fetch_add(size as i64, Ordering::Relaxed);
        }
        if TRACING.load(Ordering::Relaxed) {
            Self::trace(size);
        }
    }

    #[cold]
    fn trace(size: usize) {
        if IN_TRACE.with(|t| t.replace(true)) {
            return;
        }
        let bt = Backtrace::force_capture();
        SITES.lock().unwrap().push((size, bt));
        IN_TRACE.with(|t| t.set(false));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if Self::counting() {
            NET_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if Self::counting() {
            REALLOCS.fetch_add(1, Ordering::Relaxed);
            NET_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        if TRACING.load(Ordering::Relaxed) {
            Self::trace(new_size);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations, reallocations, bytes and net bytes counted while `f` ran.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Allocs {
    pub(crate) allocs: u64,
    pub(crate) reallocs: u64,
    pub(crate) bytes: u64,
    pub(crate) net_bytes: i64,
}

/// Starts counting the allocations of this thread only, or of every thread.
pub(crate) fn start_counting(all_threads: bool) {
    COUNTED.with(|c| c.set(true));
    ALL_THREADS.store(all_threads, Ordering::SeqCst);
    ALLOCS.store(0, Ordering::Relaxed);
    REALLOCS.store(0, Ordering::Relaxed);
    BYTES.store(0, Ordering::Relaxed);
    NET_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
}

pub(crate) fn stop_counting() -> Allocs {
    COUNTING.store(false, Ordering::SeqCst);
    COUNTED.with(|c| c.set(false));
    Allocs {
        allocs: ALLOCS.load(Ordering::Relaxed),
        reallocs: REALLOCS.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
        net_bytes: NET_BYTES.load(Ordering::Relaxed),
    }
}
