#![no_main]
//! Every server-side SASL mechanism fed arbitrary client data: it must end in success or
//! failure within a bounded number of steps and never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    assert!(
        mail_sasl::fuzzing::server_exchange(data),
        "the exchange did not end within eight steps"
    );
});
