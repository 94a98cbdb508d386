//! Second factors. Each factor is one module here; what they share (the kinds,
//! stored credentials, the [`SecondFactor`] trait) lives in this file.

pub mod recovery;
pub mod totp;
