//! An operator's message template (`[messages] templates_dir`): loaded and
//! checked at start-up by rendering it with sample values.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_delivery::Templates;

fn dir() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("email")).unwrap();
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = dir().path().join("email").join("sign_in_code.txt");
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let _ = Templates::new("Portcullis", "https://id.example", Some(dir().path()));
});
