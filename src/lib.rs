//! packserve: a drop-in replacement for `git-upload-pack`.
//!
//! Layers, outermost first: [`frontend`] (envelopes) → [`session`] (v0/v1/v2 over [`wire`]) →
//! [`negotiate`] and [`select`] (decisions over [`odb`]) → [`pack`] (the stream).

pub mod bits;
pub mod cli;
pub mod config;
pub mod frontend;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod host;
pub mod log;
pub mod negotiate;
pub mod odb;
pub mod pack;
pub mod refs;
pub mod repo;
pub mod select;
pub mod session;
pub mod trace;
pub mod wire;

/// An I/O error as C's `strerror` words it, as git prints it (without Rust's " (os error N)").
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}
