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
        ("second_step.html", include_str!("../templates/second_step.html")),
        ("totp_setup.html", include_str!("../templates/totp_setup.html")),
        ("recovery_codes.html", include_str!("../templates/recovery_codes.html")),
        ("security.html", include_str!("../templates/security.html")),
        ("phone_confirm.html", include_str!("../templates/phone_confirm.html")),
        ("login_code.html", include_str!("../templates/login_code.html")),
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
