//! Running a test's future on a thread with a small stack (512 KiB): what serializes or drops
//! a value level by level would overflow it long before 10,000 levels.

use std::future::Future;

/// `f`'s future run to its end on a current-thread runtime, on a thread of its own with a
/// 512 KiB stack; its output.
pub fn block_on_small_stack<F, Fut>(f: F) -> Fut::Output
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future,
    Fut::Output: Send + 'static,
{
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f())
        })
        .unwrap()
        .join()
        .unwrap()
}
