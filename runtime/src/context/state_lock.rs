//! The lock of a run's state ([`StateLock`]): one atomic read-modify-write to take, a plain
//! store to give back.
//!
//! A run takes its state's lock about twenty times (each step's start and end, each firing,
//! the run's end), nearly always with nobody else asking: the run's own task is the only
//! writer unless steps run in tasks of their own. A `std::sync::Mutex` costs two atomic
//! read-modify-writes a take (a compare-exchange to take it, a swap to give it back, which
//! must learn whether a thread sleeps on it); this lock's release is a store, because nobody
//! ever sleeps on it: a thread that finds it taken spins a little, then yields its time
//! slice until it is free. That is sound only for sections that never wait, and the run's
//! state is never held across user code or an await (its guard is not `Send`, so a `Send`
//! future cannot hold it across an await).

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A lock for short sections that never wait (see the module's documentation). A panic
/// while it is held gives it back (the guard is dropped while unwinding) and does not poison
/// it: no section runs user code, so the data is still consistent.
pub(crate) struct StateLock<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and at most one guard exists at a time
// (`lock` takes `taken` with an acquiring compare-exchange; the guard's drop gives it back
// with a releasing store): the same contract as `std::sync::Mutex<T>`, `Sync` for `T: Send`.
unsafe impl<T: Send> Sync for StateLock<T> {}

/// The value of a [`StateLock`], while taken. Not `Send`: it is given back by the thread
/// that took it.
pub(crate) struct StateGuard<'a, T> {
    lock: &'a StateLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T` out, as `std::sync::MutexGuard` does.
unsafe impl<T: Sync> Sync for StateGuard<'_, T> {}

/// Spins before a waiting thread starts yielding its time slice.
const SPINS: u32 = 64;

impl<T> StateLock<T> {
    pub(crate) const fn new(value: T) -> Self {
        StateLock {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Takes the lock: at once when it is free (one compare-exchange), else once the thread
    /// holding it gives it back.
    #[inline]
    pub(crate) fn lock(&self) -> StateGuard<'_, T> {
        if self
            .taken
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        StateGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            // Read until it looks free, then try: the cache line is not written meanwhile.
            while self.taken.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .taken
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

impl<T> Deref for StateGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock: no other reference to the value exists.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for StateGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock, and is borrowed uniquely.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for StateGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::StateLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Barrier};

    /// Threads, started together, add to one counter under the lock, each add a read, a
    /// pause and a write, and count themselves in and out of the section: with a lock that
    /// lets two threads in at once, one finds another inside, and adds are lost.
    #[test]
    fn the_lock_lets_one_thread_in_at_a_time() {
        const THREADS: u64 = 4;
        const ADDS: u64 = 100_000;
        let lock = Arc::new(StateLock::new(0u64));
        let inside = Arc::new(AtomicU32::new(0));
        let start = Arc::new(Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (lock, inside, start) = (lock.clone(), inside.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let mut overlaps = 0u64;
                    for _ in 0..ADDS {
                        let mut n = lock.lock();
                        if inside.fetch_add(1, Ordering::Relaxed) != 0 {
                            overlaps += 1;
                        }
                        let read = *n;
                        for _ in 0..std::hint::black_box(8) {
                            std::hint::spin_loop();
                        }
                        *n = read + 1;
                        inside.fetch_sub(1, Ordering::Relaxed);
                    }
                    overlaps
                })
            })
            .collect();
        let overlaps: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(overlaps, 0, "threads found another inside the section");
        assert_eq!(*lock.lock(), THREADS * ADDS);
    }

    #[test]
    fn a_panic_while_it_is_held_gives_it_back() {
        let lock = Arc::new(StateLock::new(Vec::<u32>::new()));
        let held = Arc::clone(&lock);
        let panicked = std::thread::spawn(move || {
            let mut v = held.lock();
            v.push(1);
            panic!("while held");
        })
        .join();
        assert!(panicked.is_err());
        lock.lock().push(2);
        assert_eq!(*lock.lock(), [1, 2]);
    }
}
