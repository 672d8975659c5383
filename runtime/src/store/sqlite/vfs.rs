//! The store's connection writes its write-ahead log through a thin VFS over SQLite's own
//! (`unix`) that joins each WAL frame's two writes into one. SQLite writes a frame as its
//! 24-byte header, then its page, each a `pwrite` of its own: two system calls a page
//! written, 33 of a sequential W5 run's 35. Here the header is held until the page that
//! follows it, and both go in one `pwrite`.
//!
//! A held header is never left held: any other call on the log's file (a read, a sync, its
//! size, closing it, a write elsewhere) writes it first, and a header SQLite rewrites alone (a
//! frame's checksum rewritten in place, `walRewriteChecksums`: a read of the frame, then a write
//! of its header) is written at once. SQLite's writes of one frame follow each other within one
//! call into the log (`walWriteOneFrame`), before the commit is published in the WAL index, so
//! nothing another connection or process can read waits in the buffer. Every other file (the
//! database, its `-shm`) is SQLite's own, untouched.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The VFS's name, for `Connection::open_with_flags_and_vfs`.
pub(super) const NAME: &CStr = c"hookflow-wal";

/// A frame header's size in the write-ahead log.
const FRAME_HEADER: usize = 24;

/// The log's header: no frame starts before it.
const LOG_HEADER: i64 = 32;

/// Registers the VFS (once a process); `false` if SQLite has no `unix` VFS to wrap (the store
/// then opens on SQLite's default).
pub(super) fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` returns SQLite's registered VFS (never freed) or null;
        // ours is leaked, so it lives as long as SQLite may use it.
        unsafe {
            let real = ffi::sqlite3_vfs_find(c"unix".as_ptr());
            if real.is_null() {
                return false;
            }
            let mut vfs = *real;
            vfs.szOsFile = c_int::try_from(std::mem::size_of::<WalFile>())
                .unwrap_or(c_int::MAX)
                .saturating_add((*real).szOsFile);
            vfs.zName = NAME.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.pAppData = real.cast();
            vfs.xOpen = Some(open);
            ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) == ffi::SQLITE_OK
        }
    })
}

/// A write-ahead log opened through the VFS: SQLite's file, then the `unix` file it wraps.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The frame header held, and where it goes (`held_at < 0`: none).
    held: [u8; FRAME_HEADER],
    held_at: i64,
    /// The last read's offset: a header written where the frame was just read is rewritten
    /// in place, not followed by its page.
    read_at: i64,
    /// A header and its page, joined.
    joined: Vec<u8>,
}

/// Opens a file on the `unix` VFS; a write-ahead log behind a [`WalFile`].
unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite gives `file` `szOsFile` bytes (a `WalFile` and the real file); the
    // real VFS is in `pAppData` (`register`).
    unsafe {
        let real_vfs: *mut ffi::sqlite3_vfs = (*vfs).pAppData.cast();
        let Some(real_open) = (*real_vfs).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Any other file is the real VFS's, in the same memory.
            return real_open(real_vfs, name, file, flags, out_flags);
        }
        let wal: *mut WalFile = file.cast();
        let real: *mut ffi::sqlite3_file = wal.add(1).cast();
        let rc = real_open(real_vfs, name, real, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            (*wal).base.pMethods = std::ptr::null();
            return rc;
        }
        wal.write(WalFile {
            base: ffi::sqlite3_file {
                pMethods: &raw const METHODS,
            },
            real,
            held: [0; FRAME_HEADER],
            held_at: -1,
            read_at: -1,
            joined: Vec::new(),
        });
        ffi::SQLITE_OK
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The real file's method `$m`, called with `$args` (`SQLITE_IOERR` if it has none).
macro_rules! real {
    ($file:expr, $m:ident $(, $arg:expr)*) => {{
        let real = (*$file).real;
        match (*(*real).pMethods).$m {
            Some(method) => method(real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

/// Writes the held header, if any.
unsafe fn flush(wal: *mut WalFile) -> c_int {
    // SAFETY: `wal` is an open `WalFile` (SQLite calls its methods only between open and
    // close), used by one connection at a time.
    unsafe {
        let at = (*wal).held_at;
        if at < 0 {
            return ffi::SQLITE_OK;
        }
        (*wal).held_at = -1;
        let held = (*wal).held;
        real!(wal, xWrite, held.as_ptr().cast(), FRAME_HEADER as c_int, at)
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: as `flush`; `data` holds `amount` bytes (SQLite's call).
    unsafe {
        let wal: *mut WalFile = file.cast();
        let len = usize::try_from(amount).unwrap_or(0);
        if len == FRAME_HEADER && offset >= LOG_HEADER && offset != (*wal).read_at {
            let rc = flush(wal);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            std::ptr::copy_nonoverlapping(data.cast::<u8>(), (*wal).held.as_mut_ptr(), len);
            (*wal).held_at = offset;
            return ffi::SQLITE_OK;
        }
        let at = (*wal).held_at;
        if at >= 0 && offset == at + FRAME_HEADER as i64 {
            (*wal).held_at = -1;
            let joined = &mut (*wal).joined;
            joined.clear();
            joined.extend_from_slice(&(*wal).held);
            joined.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
            let (ptr, total) = (joined.as_ptr(), joined.len());
            return real!(wal, xWrite, ptr.cast(), total as c_int, at);
        }
        let rc = flush(wal);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        real!(wal, xWrite, data, amount, offset)
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as `flush`; the `WalFile` is dropped once, here.
    unsafe {
        let wal: *mut WalFile = file.cast();
        let flushed = flush(wal);
        let rc = real!(wal, xClose);
        std::ptr::drop_in_place(wal);
        if flushed == ffi::SQLITE_OK {
            rc
        } else {
            flushed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: as `flush`.
    unsafe {
        let wal: *mut WalFile = file.cast();
        let rc = flush(wal);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        (*wal).read_at = offset;
        real!(wal, xRead, data, amount, offset)
    }
}

/// A method that writes the held header first, then calls the real file's.
macro_rules! flushing {
    ($name:ident, $m:ident $(, $arg:ident: $ty:ty)*) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: as `flush`.
            unsafe {
                let wal: *mut WalFile = file.cast();
                let rc = flush(wal);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                real!(wal, $m $(, $arg)*)
            }
        }
    };
}

flushing!(truncate, xTruncate, size: i64);
flushing!(sync, xSync, flags: c_int);
flushing!(file_size, xFileSize, size: *mut i64);
flushing!(lock, xLock, level: c_int);
flushing!(unlock, xUnlock, level: c_int);
flushing!(check_reserved_lock, xCheckReservedLock, out: *mut c_int);
flushing!(file_control, xFileControl, op: c_int, arg: *mut c_void);
flushing!(shm_map, xShmMap, region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void);
flushing!(shm_lock, xShmLock, offset: c_int, n: c_int, flags: c_int);
flushing!(shm_unmap, xShmUnmap, delete: c_int);
flushing!(fetch, xFetch, offset: i64, amount: c_int, out: *mut *mut c_void);
flushing!(unfetch, xUnfetch, offset: i64, page: *mut c_void);

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as `flush`.
    unsafe {
        let wal: *mut WalFile = file.cast();
        real!(wal, xSectorSize)
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as `flush`.
    unsafe {
        let wal: *mut WalFile = file.cast();
        real!(wal, xDeviceCharacteristics)
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as `flush`.
    unsafe {
        let wal: *mut WalFile = file.cast();
        let real = (*wal).real;
        if let Some(barrier) = (*(*real).pMethods).xShmBarrier {
            barrier(real);
        }
    }
}
