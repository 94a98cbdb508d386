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
