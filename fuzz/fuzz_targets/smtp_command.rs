#![no_main]
// Placeholder until the parser lands.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = data;
});
