//! Fuzz target `filter`: see `packserve::fuzz_entry::filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::filter(data));
