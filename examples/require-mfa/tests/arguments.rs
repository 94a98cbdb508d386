#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The sample's own checks of what it is started with (the browser suite,
//! `e2e/tests/require_mfa.test.mjs`, drives it against a real server; this
//! test also makes `cargo test` build the binary the suite runs).

use std::process::Command;

#[test]
fn a_client_that_is_not_the_json_of_client_create_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_require-mfa")).args(["--client", "abc"]).output().unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--client: not the JSON of `portcullis client create`"), "{said}");
}

#[test]
fn an_unreachable_issuer_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_require-mfa"))
        .args(["--issuer", "http://127.0.0.1:1", "--client", r#"{"client_id":"x"}"#])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is `portcullis serve` running at http://127.0.0.1:1?"), "{said}");
}
