//! The wall clock the journal and the stores read.

#[cfg(not(unix))]
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in microseconds since the Unix epoch: read for every journal event, so
/// read directly (`SystemTime` adds a checked subtraction and 128-bit arithmetic per call).
#[cfg(unix)]
#[inline]
pub(crate) fn now_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; CLOCK_REALTIME always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * 1_000_000
        + u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000
}

/// The wall clock in microseconds since the Unix epoch.
#[cfg(not(unix))]
pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
