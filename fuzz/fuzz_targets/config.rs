//! The configuration file (TOML), as far as its values and their checks go.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = portcullis::config::Config::from_toml(text);
});
