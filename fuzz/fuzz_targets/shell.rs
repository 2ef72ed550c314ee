//! Fuzz target `shell`: see `packserve::fuzz_entry::shell`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::shell(data));
