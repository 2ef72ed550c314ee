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
    let packserve::cli::Mode::UploadPack(args) = mode;
    match packserve::frontend::upload_pack::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if let Some(m) = f.message {
                eprintln!("{m}");
            }
            ExitCode::from(f.code as u8)
        }
    }
}
