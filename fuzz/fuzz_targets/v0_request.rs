//! Fuzz target `v0_request`: see `packserve::fuzz_entry::v0_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| packserve::fuzz_entry::v0_request(data));
