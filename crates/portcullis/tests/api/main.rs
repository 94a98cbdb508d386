//! End-to-end tests of the real server over HTTP. One test binary (fast to
//! link); one module per feature; each scenario runs on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod accounts;
mod admin;
mod audit_log;
mod backup;
mod bad_input;
mod cli;
mod client_policy;
mod control;
mod csrf;
mod deploy;
mod email_codes;
mod email_sign_in;
mod faults;
mod first_run;
mod hardening;
mod lockout;
mod metrics;
mod mfa;
mod oidc;
mod pages;
mod password_reset;
mod policy;
mod push;
mod registration;
mod relying_party;
mod security_page;
mod sign_in_attacks;
mod sms_codes;
mod smtp;
mod sweep;
mod two_nodes;
mod webauthn;
