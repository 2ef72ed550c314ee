//! Fuzz target `http`: see `packserve::fuzz_entry::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::http(data));
