//! argv → mode; nothing else.
//!
//! The C `main` is packserve's own (`no_main`): Rust's start-up finds the main thread's stack
//! guard by having glibc parse `/proc/self/maps` (stdio, scanf) and sets up an alternate signal
//! stack for its stack-overflow message; that cost more CPU and memory than answering a small
//! `ls-refs`. What packserve relies on from it is done here instead: SIGPIPE ignored (a write to
//! a client that went away fails with EPIPE and the session ends quietly), file descriptors 0-2
//! open (on /dev/null if they were closed), a panic ending the process with status 101 after
//! its message, stdout flushed at the end. The arguments are read from `argv` here: glibc hands
//! them to Rust's `std::env::args` by itself, musl (the static build) does not.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[no_mangle]
/// # Safety
/// Called by the C runtime only, with `argc` valid strings in `argv`.
pub unsafe extern "C" fn main(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    use std::os::unix::ffi::OsStrExt;
    start_up();
    let args: Vec<std::ffi::OsString> = (0..usize::try_from(argc).unwrap_or(0))
        .map(|i| {
            // SAFETY: the C runtime passes `argc` pointers to NUL-terminated strings in `argv`.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned()
        })
        .collect();
    let code = std::panic::catch_unwind(move || run(args)).map_or(101, |code| code);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// What Rust's own start-up does that packserve needs.
#[cfg(not(test))]
fn start_up() {
    // SAFETY: installs the ignore disposition; no handler code is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `fds` is a valid array of three pollfd structures; a zero timeout never blocks.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } >= 0 {
        for fd in fds.iter().filter(|f| f.revents & libc::POLLNVAL != 0) {
            // The lowest free descriptor is the closed one.
            match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                Ok(f) => std::mem::forget(f),
                Err(_) => eprintln!("packserve: cannot open /dev/null for descriptor {}", fd.fd),
            }
        }
    }
}

/// Runs the mode `argv` names; the exit status.
#[cfg_attr(test, allow(dead_code))]
fn run(args: Vec<std::ffi::OsString>) -> std::ffi::c_int {
    let argv: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let mode = match packserve::cli::parse(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 129,
            };
        }
    };
    use packserve::cli::Mode;
    use packserve::frontend;
    frontend::upload_pack::start_trace2(&argv);
    let result = match mode {
        Mode::UploadPack(args) => frontend::upload_pack::run(&args),
        Mode::Shell(args) => frontend::shell::run(&args),
        Mode::HttpBackend(args) => frontend::http_backend::run(&args),
        Mode::Inetd(args) => frontend::inetd::run(&args),
    };
    let code = match result {
        Ok(()) => 0,
        Err(f) => {
            if let Some(m) = f.message {
                // git's die() traces its message (the format is not known here: the message).
                if let Some(msg) = m.strip_prefix("fatal: ") {
                    packserve::trace2::error(msg, msg);
                }
                eprintln!("{m}");
            }
            // An exit status is eight bits, as `ExitCode::from(u8)` made it.
            std::ffi::c_int::from(f.code as u8)
        }
    };
    packserve::trace2::exit(code);
    code
}
