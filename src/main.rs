//! argv → mode; nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mode = match packserve::cli::parse(args) {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    ExitCode::SUCCESS
                }
                _ => {
                    let _ = e.print();
                    ExitCode::from(129)
                }
            };
        }
    };
    use packserve::cli::Mode;
    use packserve::frontend;
    let result = match mode {
        Mode::UploadPack(args) => frontend::upload_pack::run(&args),
        Mode::Shell(args) => frontend::shell::run(&args),
        Mode::HttpBackend(args) => frontend::http_backend::run(&args),
        Mode::Inetd(args) => frontend::inetd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(m) = f.message {
                eprintln!("{m}");
            }
            ExitCode::from(f.code as u8)
        }
    }
}
