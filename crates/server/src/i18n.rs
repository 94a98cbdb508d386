//! The language of a response: the user's own choice (the language cookie,
//! set from the account page and at each sign-in, cleared at sign-out and at
//! a sign-in of a user without a choice), else the browser's
//! `Accept-Language`, else English. A middleware decides
//! once per request and keeps it in a task-local, so every page and error
//! rendered while handling the request speaks it without each handler
//! passing it along.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
pub use portcullis_i18n::{Language, Msg};

use crate::request::cookie_value;
use crate::state::AppState;

/// Cookie holding the language a user chose (`en`, `de`); absent: the browser's.
pub const LANGUAGE_COOKIE: &str = "portcullis_lang";

tokio::task_local! {
    static LANGUAGE: Language;
}

/// The language of the request being handled (English outside one).
pub fn current() -> Language {
    LANGUAGE.try_with(|l| *l).unwrap_or_default()
}

/// `msg` in the current request's language.
pub fn tr(msg: impl Into<Msg>) -> String {
    msg.into().text(current())
}

/// Runs `f` as if handling a request in `lang` (tests, background work).
pub async fn in_language<F: std::future::Future>(lang: Language, f: F) -> F::Output {
    LANGUAGE.scope(lang, f).await
}

/// The language a request is answered in.
pub fn negotiate(state: &AppState, headers: &axum::http::HeaderMap) -> Language {
    if let Some(chosen) = cookie_value(state, headers, LANGUAGE_COOKIE).and_then(|c| Language::parse(&c)) {
        return chosen;
    }
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(Language::negotiate).unwrap_or_default()
}

/// Middleware: decides the request's language and handles it in that language.
/// Pages carry `Content-Language` and `Vary: Accept-Language, Cookie` (JSON
/// answers, JWKS and discovery among them, stay cacheable as they were).
pub async fn choose_language(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let lang = negotiate(&state, request.headers());
    let mut response = LANGUAGE.scope(lang, next.run(request)).await;
    let headers = response.headers_mut();
    let page = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("text/html"));
    if !page {
        return response;
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(lang.code()) {
        headers.insert(header::CONTENT_LANGUAGE, v);
    }
    headers.append(header::VARY, axum::http::HeaderValue::from_static("Accept-Language, Cookie"));
    response
}

/// Items joined as a sentence says them: "A", "A and B", "A, B and C"
/// (`conjunction` is `list-and` or `list-or`).
pub fn join_words(items: &[String], conjunction: &'static str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => Msg::new(conjunction).arg("first", init.join(", ")).arg("last", last).text(current()),
    }
}

/// What an application's scopes let it see, in words ("your email address
/// and your name"); scopes without words of their own (`openid`, an
/// operator's) and `offline_access` (said apart: it is not something to see)
/// are left out.
pub fn scope_words<S: AsRef<str>>(scopes: &[S]) -> String {
    let words: Vec<String> = scopes
        .iter()
        .filter_map(|s| match s.as_ref() {
            "email" => Some("scope-email"),
            "profile" => Some("scope-profile"),
            _ => None,
        })
        .map(tr)
        .collect();
    join_words(&words, "list-and")
}

/// The languages a user can choose, for the account page's menu.
pub fn choices() -> Vec<minijinja::Value> {
    Language::ALL.iter().map(|l| minijinja::context! { code => l.code(), name => l.native_name() }).collect()
}

/// A browser's name from its `User-Agent`, in the request's language.
pub fn device_name(user_agent: &str) -> String {
    portcullis_i18n::device_name(current(), user_agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn user_agents_become_names_people_know() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        in_language(Language::En, async {
            assert_eq!(device_name(chrome), "Chrome 156 on Linux");
            assert_eq!(device_name(firefox), "Firefox 133 on Windows 10");
            assert_eq!(device_name(safari), "Safari 18 on iPhone");
            assert_eq!(device_name(""), "Unknown browser");
            assert_eq!(device_name("zzz"), "Unknown browser");
        })
        .await;
        in_language(Language::De, async {
            assert_eq!(device_name(chrome), "Chrome 156 unter Linux");
            assert_eq!(device_name("zzz"), "Unbekannter Browser");
        })
        .await;
    }

    #[tokio::test]
    async fn lists_read_as_sentences() {
        let items = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        in_language(Language::En, async {
            assert_eq!(join_words(&items(&["your password"]), "list-and"), "your password");
            assert_eq!(join_words(&items(&["a", "b", "c"]), "list-and"), "a, b and c");
            assert_eq!(join_words(&items(&["a", "b"]), "list-or"), "a or b");
        })
        .await;
        in_language(Language::De, async { assert_eq!(join_words(&items(&["a", "b"]), "list-and"), "a und b") }).await;
    }
}
