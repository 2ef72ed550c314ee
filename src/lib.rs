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
