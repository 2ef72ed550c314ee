//! Fuzz target `session`: see `packserve::fuzz_entry::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::session(data));
