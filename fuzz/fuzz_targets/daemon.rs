//! Fuzz target `daemon`: see `packserve::fuzz_entry::daemon`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::daemon(data));
