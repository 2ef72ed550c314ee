//! The few system calls std does not wrap: `flock`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

extern "C" {
    #[link_name = "flock"]
    fn flock_raw(fd: i32, op: i32) -> i32;
}

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;

/// Takes an exclusive (`exclusive`) or shared lock on `f` without waiting: `Ok(false)` when
/// another open file description holds a conflicting one.
pub fn try_lock(f: &File, exclusive: bool) -> io::Result<bool> {
    let op = if exclusive { LOCK_EX } else { LOCK_SH } | LOCK_NB;
    loop {
        // SAFETY: flock takes a descriptor we own (kept open by `f`) and an integer.
        let r = unsafe { flock_raw(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => return Ok(false),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
}

/// `sendfile(out, file, offset, count)`: bytes of `file` from `*offset` to the descriptor
/// `out` without passing through this process (the offset advances by what was sent).
pub fn sendfile(out: i32, file: &File, offset: &mut i64, count: usize) -> io::Result<usize> {
    extern "C" {
        #[link_name = "sendfile"]
        fn sendfile_raw(out_fd: i32, in_fd: i32, offset: *mut i64, count: usize) -> isize;
    }
    loop {
        // SAFETY: both descriptors are open (`file` is borrowed, `out` is the caller's); the
        // offset points to a live i64.
        let n = unsafe { sendfile_raw(out, file.as_raw_fd(), offset, count) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Whether `a` and `b` are the same file (device and inode).
pub fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Opens (creating if needed) a file to lock: read-write, or read-only when another user
/// created it (a shared lock directory; `flock` works on either).
pub fn open_lock_file(path: &std::path::Path) -> io::Result<File> {
    match std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}
