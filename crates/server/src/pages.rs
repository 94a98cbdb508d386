//! Server-rendered pages (minijinja, auto-escaped). Templates are compiled into
//! the binary so the server needs no files beside it.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `errors.email` must be empty, not an error, when there are no errors.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("message.html", include_str!("../templates/message.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("signup.html", include_str!("../templates/signup.html")),
        ("verify_email.html", include_str!("../templates/verify_email.html")),
        ("forgot_password.html", include_str!("../templates/forgot_password.html")),
        ("reset_password.html", include_str!("../templates/reset_password.html")),
        ("account.html", include_str!("../templates/account.html")),
        ("form_post.html", include_str!("../templates/form_post.html")),
        ("end_session.html", include_str!("../templates/end_session.html")),
        ("consent.html", include_str!("../templates/consent.html")),
        ("second_step.html", include_str!("../templates/second_step.html")),
        ("second_step_methods.html", include_str!("../templates/second_step_methods.html")),
        ("setup_forms.html", include_str!("../templates/setup_forms.html")),
        ("enroll.html", include_str!("../templates/enroll.html")),
        ("totp_setup.html", include_str!("../templates/totp_setup.html")),
        ("recovery_codes.html", include_str!("../templates/recovery_codes.html")),
        ("security.html", include_str!("../templates/security.html")),
        ("phone_confirm.html", include_str!("../templates/phone_confirm.html")),
        ("login_code.html", include_str!("../templates/login_code.html")),
        ("admin.html", include_str!("../templates/admin.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // Templates are compile-time constants; a syntax error is a build defect caught by every test.
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

/// Renders a template with `status`; a rendering failure becomes a plain 500.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = TEMPLATES.get_template(name).and_then(|t| t.render(ctx));
    match html {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            // Pages carry per-user content and CSRF tokens: never cache them.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side.").into_response()
        }
    }
}

/// A page that says what went wrong.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        status,
        "error.html",
        minijinja::context! { title => status.canonical_reason().unwrap_or("Error"), message => message, status => status.as_u16() },
    )
}

/// An inline SVG QR code of `data` (for `otpauth://` URIs); empty if it cannot be encoded.
pub fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::new(data.as_bytes()) {
        Ok(code) => code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build(),
        Err(e) => {
            tracing::error!(error = %e, "QR code cannot be built");
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_qr_code_decodes_to_the_exact_uri() {
        let uri = "otpauth://totp/Portcullis:ada@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portcullis&algorithm=SHA1&digits=6&period=30";
        assert!(super::qr_svg(uri).starts_with("<?xml"));
        // Decode the same code, rendered to pixels, with an independent QR reader.
        let image = qrcode::QrCode::new(uri.as_bytes()).unwrap().render::<image::Luma<u8>>().min_dimensions(200, 200).build();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, uri);
    }
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn date_time(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{} {:02}:{:02} UTC", date(t), secs / 3600, secs % 3600 / 60)
}

/// `YYYY-MM-DD` (UTC).
pub fn date(t: i64) -> String {
    // Days since the epoch → civil date (Howard Hinnant's algorithm), to avoid a date crate here.
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Midnight UTC of a `YYYY-MM-DD` date, as Unix seconds (the inverse of [`date`]).
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.trim().splitn(3, '-');
    let (y, m, d): (i64, i64, i64) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // 2024-02-31 is not a date.
    (date(days * 86_400) == s.trim()).then_some(days * 86_400)
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-11-29"), Some(1_795_910_400));
        assert_eq!(date(1_795_910_400 + 86_399), "2026-11-29");
        assert_eq!(date_time(1_795_910_400 + 3_660), "2026-11-29 01:01 UTC");
        assert_eq!(parse_date("2024-02-29").map(date).as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}
