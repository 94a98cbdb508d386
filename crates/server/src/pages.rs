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
    // `t("message-id", …)`: the words, in the request's language (`lang`).
    portcullis_i18n::install(&mut env);
    for (name, source) in [
        ("base.html", include_str!("../templates/base.html")),
        ("error.html", include_str!("../templates/error.html")),
        ("message.html", include_str!("../templates/message.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("signup.html", include_str!("../templates/signup.html")),
        ("verify_email.html", include_str!("../templates/verify_email.html")),
        ("forgot_password.html", include_str!("../templates/forgot_password.html")),
        ("reset_password.html", include_str!("../templates/reset_password.html")),
        ("first_admin.html", include_str!("../templates/first_admin.html")),
        ("account_fields.html", include_str!("../templates/account_fields.html")),
        ("account.html", include_str!("../templates/account.html")),
        ("form_post.html", include_str!("../templates/form_post.html")),
        ("end_session.html", include_str!("../templates/end_session.html")),
        ("consent.html", include_str!("../templates/consent.html")),
        ("second_step.html", include_str!("../templates/second_step.html")),
        ("second_step_methods.html", include_str!("../templates/second_step_methods.html")),
        ("setup_forms.html", include_str!("../templates/setup_forms.html")),
        ("webauthn_words.html", include_str!("../templates/webauthn_words.html")),
        ("enroll.html", include_str!("../templates/enroll.html")),
        ("totp_setup.html", include_str!("../templates/totp_setup.html")),
        ("recovery_codes.html", include_str!("../templates/recovery_codes.html")),
        ("security.html", include_str!("../templates/security.html")),
        ("phone_confirm.html", include_str!("../templates/phone_confirm.html")),
        ("login_code.html", include_str!("../templates/login_code.html")),
        ("admin.html", include_str!("../templates/admin.html")),
        ("protect.html", include_str!("../templates/protect.html")),
        ("push_setup.html", include_str!("../templates/push_setup.html")),
        ("companion.html", include_str!("../templates/companion.html")),
    ] {
        if let Err(e) = env.add_template(name, source) {
            // Templates are compile-time constants; a syntax error is a build defect caught by every test.
            tracing::error!(template = name, error = %e, "template does not compile");
        }
    }
    env
});

/// Renders a template in the request's language (`i18n::current`) as a
/// string; an error names what broke (an unknown message id, say).
pub fn render_to_string(name: &str, ctx: minijinja::Value) -> Result<String, minijinja::Error> {
    let ctx = minijinja::context! { lang => crate::i18n::current().code(), ..ctx };
    TEMPLATES.get_template(name).and_then(|t| t.render(ctx))
}

/// Every page template's name (the page tests render each in every language).
pub fn template_names() -> Vec<&'static str> {
    TEMPLATES.templates().map(|(name, _)| name).collect()
}

/// Renders a template with `status`; a rendering failure becomes a plain 500.
pub fn render(status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    let html = render_to_string(name, ctx);
    match html {
        Ok(body) => {
            let mut response = (status, Html(body)).into_response();
            // Pages carry per-user content and CSRF tokens: never cache them.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, crate::i18n::tr("error-internal")).into_response()
        }
    }
}

/// A page that says what went wrong, titled by its status in words.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let id = format!("status-{}", status.as_u16());
    let title =
        if portcullis_i18n::exists(&id) { portcullis_i18n::plain(crate::i18n::current(), &id) } else { crate::i18n::tr("status-other") };
    render(status, "error.html", minijinja::context! { title, message => message, status => status.as_u16() })
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

/// A date and time in the request's language ("1 December 2026, 20:44 UTC").
pub fn when(t: i64) -> String {
    portcullis_i18n::date_time(crate::i18n::current(), t)
}

/// A date in the request's language ("1 December 2026").
pub fn day(t: i64) -> String {
    portcullis_i18n::date(crate::i18n::current(), t)
}

/// `YYYY-MM-DD` (UTC): form values (the audit filter), not words.
pub fn date(t: i64) -> String {
    let (y, m, d) = portcullis_i18n::civil(t);
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
        assert_eq!(parse_date("2024-02-29").map(date).as_deref(), Some("2024-02-29"));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("yesterday"), None);
    }
}

/// Every page in every language: each template renders with a context that
/// opens its branches, and every message id a page or a handler can name is
/// in the catalogs (whose languages agree, `portcullis-i18n`'s tests).
#[cfg(test)]
mod language_tests {
    use portcullis_core::audit::AuditKind;
    use portcullis_core::factors::FactorKind;
    use portcullis_core::methods::{Answer, AuthMethod, FactorKey, PASSWORD_STEP};
    use portcullis_i18n::{Language, exists};

    use super::*;

    /// A context under which the templates show nearly everything they can.
    fn everything() -> minijinja::Value {
        let answer = minijinja::context! {
            kind => "code", prompt => "p", button => "b", label => "l", id => "code", numeric => true, sends => true,
            send_offer => "o", send_button => "s", caution => "c", choice => "Phone",
        };
        let destination = minijinja::context! { id => "p1", label => "Phone (••23)" };
        let policy = minijinja::context! { mfa => "required", allowed_factors => ["totp"], allow_remember => true, remember_browser_days => 7, min_acr => "mfa" };
        minijinja::context! {
            signed_in => true, csrf_token => "t", next => "/account", next_encoded => "%2Faccount", notice => "n", error => "e",
            errors => minijinja::context! { email => "x", password => "x", confirm => "x", current => "x", code => "x", name => "x", phone => "x" },
            title => "T", message => "M", text => "X", link_href => "/", link_text => "L", email => "ada@example.com", name => "Ada",
            webauthn => true, email_code => true, breached => true, invite => true, admin => true, methods => "your password",
            language => "de", languages => crate::i18n::choices(), client => "App", client_id => "app", wants => "your name",
            offline => true, to => "the web site example.com", request => "r", answer, sent => false, method => "sms", others => true,
            remember_days => 30, destinations => [destination.clone(), destination], enroll => true,
            methods_list => [minijinja::context! { key => "sms", label => "Text me a code", answer => minijinja::context! { sends => true, choice => "Phone" } }],
            intro => "i", passkey => true, security_key => true, totp => true, phone => true, other_steps => true, sms => true,
            qr => "<svg></svg>", secret => "ABC", credential_id => "c", action => "/a", codes => ["a", "b"], continue_to => "/account",
            destination => "+44 •••• 23", factors => [minijinja::context! { id => "f", name => "Phone", kind => "Authenticator app", created => "1 May 2026", last_used => "2 May 2026", disabled => true }],
            codes_left => 1, mfa_required => false,
            browsers => [minijinja::context! { id => "b", agent => "Firefox 133 on Linux", created => "1", expires => "2" }],
            sessions => [minijinja::context! { id => "s", agent => "Chrome 156 on Linux", from => "127.0.0.1", started => "1", last_seen => "2", current => false }],
            apps => [minijinja::context! { id => "app", name => "App", scopes => "your name", scope_codes => "openid profile", first_granted => "1", last_used => "2", refresh_token => true }],
            events => [minijinja::context! { when => "w", event => "Signed in", from => "127.0.0.1", agent => "Firefox" }],
            section => "users", read_only => false, apps_of => "", q => "", secret_for => "App",
            users => [minijinja::context! { email => "a@example.com", name => "A", admin => false, auditor => true, disabled => true, failures_locked => true, mfa_required => true, actions => [("lock", "Lock")] }],
            clients => [minijinja::context! { id => "app", name => "App", public => true, redirect_uris => ["https://app.example.com/cb"], policy => policy.clone(), pinned => false }],
            default_policy => policy, factor_keys => portcullis_core::oauth::FACTOR_KEYS, kinds => ["sign_in_succeeded"],
            filter => minijinja::context! { user => "", event => "", from => "", to => "" },
            fields => [("code", "c")], post_logout_redirect_uri => "https://app.example.com/", state => "s",
        }
    }

    #[tokio::test]
    async fn every_page_renders_in_every_language() {
        for lang in Language::ALL {
            for name in template_names() {
                for section in ["users", "clients", "audit"] {
                    let ctx = minijinja::context! { section, ..everything() };
                    let html = crate::i18n::in_language(lang, async { render_to_string(name, ctx) }).await;
                    let html = html.unwrap_or_else(|e| panic!("{name} in {lang}: {e:#} {:?}", std::error::Error::source(&e)));
                    // Parts that other pages include name no language of their own.
                    let part = ["setup_forms", "webauthn_words", "account_fields"].iter().any(|p| name.starts_with(p));
                    if name.ends_with(".html") && !part {
                        assert!(html.contains(&format!("<html lang=\"{}\">", lang.code())), "{name} in {lang} names its language");
                    }
                }
            }
        }
        // The same page differs by language.
        let en = crate::i18n::in_language(Language::En, async { render_to_string("login.html", everything()) }).await.unwrap_or_default();
        let de = crate::i18n::in_language(Language::De, async { render_to_string("login.html", everything()) }).await.unwrap_or_default();
        assert!(en.contains(">Sign in</h1>") && de.contains(">Anmelden</h1>"), "{de}");
    }

    #[test]
    fn every_message_id_a_page_names_is_in_the_catalog() {
        let mut ids: Vec<String> = Vec::new();
        for (_, template) in TEMPLATES.templates() {
            let source = template.source();
            for part in source.split("t(\"").skip(1) {
                if let Some(id) = part.split('"').next()
                    && !part.starts_with(&format!("{id}\" ~"))
                {
                    ids.push(id.to_owned());
                }
            }
        }
        // Ids the templates build: "policy-mfa-" ~ m, "factor-" ~ f, "policy-acr-" ~ a.
        ids.extend(["off", "optional", "required"].map(|m| format!("policy-mfa-{m}")));
        ids.extend(["none", "mfa", "phr"].map(|a| format!("policy-acr-{a}")));
        ids.extend(portcullis_core::oauth::FACTOR_KEYS.map(|f| format!("factor-{f}")));
        // Ids the handlers and the domain name.
        let steps = FactorKey::ALL.map(FactorKey::facts).into_iter().chain([PASSWORD_STEP]);
        for facts in steps {
            ids.extend([facts.words, facts.offer, facts.prompt].map(str::to_owned));
            if let Answer::Code(field) = facts.answer {
                ids.push(field.label.to_owned());
                if let Some(s) = field.sent {
                    ids.extend([s.offer, s.button, s.notice, s.default_to, s.choice].map(str::to_owned));
                    ids.extend(s.caution.map(str::to_owned));
                }
            }
        }
        let methods = [AuthMethod::Password, AuthMethod::Passkey].into_iter().chain(FactorKey::ALL.map(AuthMethod::Factor));
        ids.extend(methods.map(|m| m.words().to_owned()));
        ids.extend(FactorKind::ALL.map(|k| k.label().to_owned()));
        ids.extend(AuditKind::ALL.iter().map(|k| crate::routes::event_label_id(k.as_str()).to_owned()));
        let missing: Vec<&String> = ids.iter().filter(|id| !exists(id)).collect();
        assert!(missing.is_empty(), "not in the catalog: {missing:?}");
        assert!(ids.len() > 250, "the scan found only {} ids", ids.len());
    }
}
