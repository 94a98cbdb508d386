//! The languages Portcullis speaks: message catalogs in Fluent
//! (`locales/LANG/*.ftl`, compiled in), the choice of a language from
//! `Accept-Language` (RFC 9110 §12.5.4) or a user's own setting, and dates
//! in the reader's language.
//!
//! Pages and messages name what they say by message id (`sign-in-title`);
//! the words are in the catalogs. English is the reference: every id exists
//! there, and a test fails when another language lacks one or has one
//! English does not. Templates call `t(id, name=value, …)` (see [`install`]),
//! which reads the language from the template's `lang` variable.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// A language with a complete catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English, the reference catalog and the default.
    #[default]
    En,
    /// German.
    De,
}

impl Language {
    /// Every language shipped, the default first.
    pub const ALL: [Language; 2] = [Language::En, Language::De];

    /// Its BCP 47 tag, as in `<html lang>` and the settings.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
        }
    }

    /// Its name in itself, for a language menu.
    pub fn native_name(self) -> &'static str {
        match self {
            Self::En => "English",
            Self::De => "Deutsch",
        }
    }

    /// The language a tag names (`de`, `de-AT`, `EN`), if it is shipped.
    pub fn parse(tag: &str) -> Option<Language> {
        let id: LanguageIdentifier = tag.trim().parse().ok()?;
        Self::ALL.into_iter().find(|l| l.code() == id.language.as_str())
    }

    /// The best shipped language for an `Accept-Language` header value
    /// (RFC 9110 §12.5.4: the highest weight wins, ties in the order sent;
    /// `q=0`, `*` and languages not shipped are passed over); English when none fits.
    pub fn negotiate(accept_language: &str) -> Language {
        // Longer headers are not a browser's: refuse to spend time on them.
        if accept_language.len() > 512 {
            return Language::default();
        }
        let mut ranges: Vec<(u16, Language)> = accept_language
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let language = Self::parse(parts.next()?.trim())?;
                let weight = parts
                    .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                    .next()
                    .map_or(Some(1000), |q| {
                        q.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).map(|q| (q * 1000.0) as u16)
                    })?;
                (weight > 0).then_some((weight, language))
            })
            .collect();
        // Stable: among equal weights the first sent wins.
        ranges.sort_by_key(|r| std::cmp::Reverse(r.0));
        ranges.first().map(|(_, l)| *l).unwrap_or_default()
    }

    fn catalog(self) -> &'static Catalog {
        match self {
            Self::En => &EN,
            Self::De => &DE,
        }
    }
}

impl std::fmt::Display for Language {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Something to say, by message id, with its arguments: what a handler hands
/// a page (`notice`, `error`) so the page says it in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Msg {
    /// The message id in the catalogs.
    pub id: std::borrow::Cow<'static, str>,
    /// Named arguments (`{ $email }` in the catalog).
    pub args: Vec<(&'static str, Arg)>,
}

/// A message argument: text, or a number (which selects plural forms).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Arg {
    /// Text, inserted as it is (pages escape it).
    Text(String),
    /// A number.
    Number(i64),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}
impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Self::Text(s.clone())
    }
}
impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}
impl From<u32> for Arg {
    fn from(n: u32) -> Self {
        Self::Number(i64::from(n))
    }
}
impl From<usize> for Arg {
    fn from(n: usize) -> Self {
        Self::Number(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl Msg {
    /// A message without arguments.
    pub const fn new(id: &'static str) -> Self {
        Self { id: std::borrow::Cow::Borrowed(id), args: Vec::new() }
    }

    /// A message whose id was decided at run time (a domain error naming one).
    pub fn owned(id: String) -> Self {
        Self { id: std::borrow::Cow::Owned(id), args: Vec::new() }
    }

    /// Adds a named argument.
    pub fn arg(mut self, name: &'static str, value: impl Into<Arg>) -> Self {
        self.args.push((name, value.into()));
        self
    }

    /// The message in `lang`.
    pub fn text(&self, lang: Language) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in &self.args {
            match value {
                Arg::Text(s) => args.set(*name, FluentValue::from(s.as_str())),
                Arg::Number(n) => args.set(*name, FluentValue::from(*n)),
            }
        }
        text(lang, &self.id, &args)
    }
}

/// In English: what logs and `Display`-based errors show.
impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text(Language::En))
    }
}

impl From<&'static str> for Msg {
    fn from(id: &'static str) -> Self {
        Self::new(id)
    }
}

/// One language's bundle, and the ids it defines.
struct Catalog {
    bundle: FluentBundle<FluentResource>,
    ids: BTreeSet<String>,
}

/// The catalog files of one language, by name.
type Sources = &'static [(&'static str, &'static str)];

const EN_SOURCES: Sources = &[
    ("common.ftl", include_str!("../locales/en/common.ftl")),
    ("sign_in.ftl", include_str!("../locales/en/sign_in.ftl")),
    ("account.ftl", include_str!("../locales/en/account.ftl")),
    ("admin.ftl", include_str!("../locales/en/admin.ftl")),
    ("messages.ftl", include_str!("../locales/en/messages.ftl")),
];
const DE_SOURCES: Sources = &[
    ("common.ftl", include_str!("../locales/de/common.ftl")),
    ("sign_in.ftl", include_str!("../locales/de/sign_in.ftl")),
    ("account.ftl", include_str!("../locales/de/account.ftl")),
    ("admin.ftl", include_str!("../locales/de/admin.ftl")),
    ("messages.ftl", include_str!("../locales/de/messages.ftl")),
];

static EN: LazyLock<Catalog> = LazyLock::new(|| Catalog::load(Language::En, EN_SOURCES));
static DE: LazyLock<Catalog> = LazyLock::new(|| Catalog::load(Language::De, DE_SOURCES));

impl Catalog {
    fn load(lang: Language, sources: Sources) -> Catalog {
        let id: LanguageIdentifier = lang.code().parse().unwrap_or_default();
        let mut bundle = FluentBundle::new_concurrent(vec![id]);
        // Unicode isolation marks around arguments would land, invisible, in
        // HTML attributes, subjects and text messages.
        bundle.set_use_isolating(false);
        let mut ids = BTreeSet::new();
        for (name, source) in sources {
            // The catalogs are compile-time constants: a syntax error is a
            // build defect that `the_catalogs_parse_and_agree` reports with
            // its place; here the entries that did parse are kept.
            let resource = match FluentResource::try_new((*source).to_owned()) {
                Ok(r) => r,
                Err((r, errors)) => {
                    tracing::error!(language = lang.code(), file = name, ?errors, "catalog has syntax errors");
                    r
                }
            };
            for entry in resource.entries() {
                if let fluent_syntax::ast::Entry::Message(m) = entry {
                    ids.insert(m.id.name.to_owned());
                }
            }
            if let Err(errors) = bundle.add_resource(resource) {
                tracing::error!(language = lang.code(), file = name, ?errors, "catalog defines a message twice");
            }
        }
        Catalog { bundle, ids }
    }

    fn format(&self, id: &str, args: &FluentArgs<'_>) -> Option<String> {
        let pattern = self.bundle.get_message(id)?.value()?;
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, Some(args), &mut errors).into_owned();
        if !errors.is_empty() {
            tracing::error!(id, ?errors, "message formatted with errors");
        }
        Some(text)
    }
}

/// Whether `id` names a message in the reference catalog.
pub fn exists(id: &str) -> bool {
    EN.ids.contains(id)
}

/// Every message id of `lang`'s catalog.
pub fn ids(lang: Language) -> &'static BTreeSet<String> {
    &lang.catalog().ids
}

/// Message `id` in `lang`, with `args`. A message missing in `lang` is said
/// in English; one missing everywhere comes out as its id (and is logged),
/// which the page tests catch ([`install`] makes it an error in templates).
pub fn text(lang: Language, id: &str, args: &FluentArgs<'_>) -> String {
    if let Some(text) = lang.catalog().format(id, args) {
        return text;
    }
    tracing::error!(id, language = lang.code(), "message missing from the catalog");
    EN.format(id, args).unwrap_or_else(|| id.to_owned())
}

/// Message `id` in `lang` without arguments.
pub fn plain(lang: Language, id: &str) -> String {
    text(lang, id, &FluentArgs::new())
}

/// A date (`1 December 2026`, `1. Dezember 2026`) of Unix time `t`, UTC.
pub fn date(lang: Language, t: i64) -> String {
    let (y, m, d) = civil(t);
    let mut args = FluentArgs::new();
    args.set("day", FluentValue::from(d));
    args.set("month", FluentValue::from(plain(lang, MONTHS[usize::try_from(m - 1).unwrap_or(0).min(11)])));
    args.set("year", FluentValue::from(y));
    text(lang, "date", &args)
}

/// A date and time (`1 December 2026, 20:44 UTC`) of Unix time `t`.
pub fn date_time(lang: Language, t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    let mut args = FluentArgs::new();
    args.set("date", FluentValue::from(date(lang, t)));
    args.set("time", FluentValue::from(format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)));
    text(lang, "date-time", &args)
}

const MONTHS: [&str; 12] =
    ["month-1", "month-2", "month-3", "month-4", "month-5", "month-6", "month-7", "month-8", "month-9", "month-10", "month-11", "month-12"];

/// The (year, month, day) of Unix time `t`, UTC (Howard Hinnant's
/// days-to-civil algorithm, to avoid a date crate).
pub fn civil(t: i64) -> (i64, i64, i64) {
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Adds to a template environment the function `t(what, name=value, …)`:
/// `what` is a message id or a [`Msg`] (an object with `id` and `args`);
/// the language is the template's `lang` variable (English when unset). A
/// message id English lacks is a rendering error, so a page test that
/// renders the page fails on it.
pub fn install(env: &mut minijinja::Environment<'_>) {
    env.add_function("t", translate);
    env.add_function("device_name", |state: &minijinja::State<'_, '_>, user_agent: &str| device_name(template_language(state), user_agent));
}

fn template_language(state: &minijinja::State<'_, '_>) -> Language {
    state.lookup("lang").and_then(|v| v.as_str().and_then(Language::parse)).unwrap_or_default()
}

/// A browser's name from its `User-Agent`, in `lang`: "Chrome 156 on Linux",
/// "Firefox 133 on Windows 10", or "Unknown browser" (woothee's data, a
/// maintained parser, rather than patterns of our own).
pub fn device_name(lang: Language, user_agent: &str) -> String {
    let unknown = || plain(lang, "device-unknown");
    if user_agent.trim().is_empty() || user_agent.len() > 1024 {
        return unknown();
    }
    let Some(ua) = woothee::parser::Parser::new().parse(user_agent) else { return unknown() };
    let known = |s: &str| !s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN;
    // Headless Chrome says so in its product token, which woothee does not know.
    let (name, version) = if known(ua.name) {
        (ua.name.to_owned(), ua.version.to_owned())
    } else if let Some(v) = user_agent.split_whitespace().find_map(|t| t.strip_prefix("HeadlessChrome/")) {
        ("Chrome".to_owned(), v.to_owned())
    } else {
        return unknown();
    };
    let major = version.split('.').next().filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())).unwrap_or("");
    let browser = if major.is_empty() { name } else { format!("{name} {major}") };
    if known(ua.os) { Msg::new("device-on").arg("browser", browser).arg("os", ua.os).text(lang) } else { browser }
}

fn translate(
    state: &minijinja::State<'_, '_>,
    what: minijinja::Value,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, minijinja::Error> {
    let lang = template_language(state);
    let mut args = FluentArgs::new();
    let id = match what.as_str() {
        Some(id) => id.to_owned(),
        None => {
            // A serialized `Msg`: { id, args: [[name, value], …] }.
            let id = what.get_attr("id")?.as_str().map(str::to_owned).unwrap_or_default();
            if let Ok(pairs) = what.get_attr("args")?.try_iter() {
                for pair in pairs {
                    let name = pair.get_item_by_index(0)?.as_str().map(str::to_owned).unwrap_or_default();
                    set_arg(&mut args, name, pair.get_item_by_index(1)?);
                }
            }
            id
        }
    };
    for name in kwargs.args() {
        let value: minijinja::Value = kwargs.get(name)?;
        set_arg(&mut args, name.to_owned(), value);
    }
    if !exists(&id) {
        return Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("no message {id:?} in the catalog")));
    }
    Ok(text(lang, &id, &args))
}

fn set_arg(args: &mut FluentArgs<'_>, name: String, value: minijinja::Value) {
    match i64::try_from(value.clone()) {
        Ok(n) if value.is_number() => args.set(name, FluentValue::from(n)),
        _ => args.set(name, FluentValue::from(value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogs_parse_and_agree() {
        for (lang, sources) in [(Language::En, EN_SOURCES), (Language::De, DE_SOURCES)] {
            for (name, source) in sources {
                if let Err((_, errors)) = fluent_syntax::parser::parse(*source) {
                    panic!("{lang}/{name} has syntax errors: {errors:?}");
                }
            }
        }
        let en = ids(Language::En);
        assert!(en.len() > 300, "the English catalog has only {} messages", en.len());
        for lang in Language::ALL {
            let other = ids(lang);
            let missing: Vec<_> = en.difference(other).collect();
            let extra: Vec<_> = other.difference(en).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
            assert!(extra.is_empty(), "{lang} has messages English lacks: {extra:?}");
        }
    }

    #[test]
    fn every_message_formats_without_errors_in_every_language() {
        for lang in Language::ALL {
            for id in ids(lang) {
                let Some(msg) = lang.catalog().bundle.get_message(id) else { continue };
                let Some(pattern) = msg.value() else { panic!("{lang}: {id} has no value") };
                // Arguments left out are reported as errors: give every one a value.
                let mut args = FluentArgs::new();
                for name in [
                    "email", "name", "minutes", "hours", "count", "seconds", "code", "phone", "browser", "os", "date", "time", "day",
                    "month", "year", "product", "site", "detail", "methods", "client", "kind", "scopes", "what", "uri", "since", "until",
                    "scheme", "to", "first", "last", "number",
                ] {
                    args.set(name, FluentValue::from(name));
                }
                let mut errors = Vec::new();
                let _ = lang.catalog().bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{lang}: {id}: {errors:?}");
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_shipped_language() {
        assert_eq!(Language::negotiate("de-DE,de;q=0.9,en;q=0.8"), Language::De);
        assert_eq!(Language::negotiate("de-AT"), Language::De);
        assert_eq!(Language::negotiate("fr-FR,fr;q=0.9,de;q=0.5,en;q=0.4"), Language::De);
        assert_eq!(Language::negotiate("en-US,en;q=0.9,de;q=0.8"), Language::En);
        assert_eq!(Language::negotiate("en;q=0.1,de;q=0.9"), Language::De);
        assert_eq!(Language::negotiate("fr, ja"), Language::En);
        assert_eq!(Language::negotiate(""), Language::En);
        assert_eq!(Language::negotiate("*"), Language::En);
        assert_eq!(Language::negotiate("de;q=0, en;q=0.1"), Language::En, "q=0 means not this one");
        assert_eq!(Language::negotiate("de;q=2"), Language::En, "an invalid weight is ignored");
        assert_eq!(Language::negotiate(&"de,".repeat(400)), Language::En);
        assert_eq!(Language::parse("DE-ch"), Some(Language::De));
        assert_eq!(Language::parse("xx"), None);
    }

    #[test]
    fn dates_read_as_people_write_them() {
        // 2026-11-29 01:01 UTC.
        let t = 1_795_910_400 + 3_660;
        assert_eq!(date(Language::En, t), "29 November 2026");
        assert_eq!(date(Language::De, t), "29. November 2026");
        assert_eq!(date_time(Language::En, t), "29 November 2026, 01:01 UTC");
        assert_eq!(date_time(Language::De, t), "29. November 2026, 01:01 UTC");
        assert_eq!(date(Language::De, 0), "1. Januar 1970");
        assert_eq!(date(Language::En, 951_782_400), "29 February 2000");
    }

    #[test]
    fn plurals_and_arguments_follow_the_language() {
        let one = Msg::new("recovery-codes-left").arg("count", 1_i64);
        let ten = Msg::new("recovery-codes-left").arg("count", 10_i64);
        assert_eq!(one.text(Language::En), "1 code left");
        assert_eq!(ten.text(Language::En), "10 codes left");
        assert_eq!(one.text(Language::De), "1 Code übrig");
        assert_eq!(ten.text(Language::De), "10 Codes übrig");
    }

    #[test]
    fn templates_translate_ids_and_messages_and_refuse_unknown_ids() {
        let mut env = minijinja::Environment::new();
        install(&mut env);
        env.add_template("t", "{{ t(what) }}|{{ t('recovery-codes-left', count=n) }}").unwrap_or_default();
        let tpl = env.get_template("t").unwrap_or_else(|_| panic!("template"));
        let what = minijinja::Value::from_serialize(Msg::new("recovery-codes-left").arg("count", 2_i64));
        let out = tpl.render(minijinja::context! { lang => "de", what, n => 1 }).unwrap_or_default();
        assert_eq!(out, "2 Codes übrig|1 Code übrig");
        let out = tpl.render(minijinja::context! { what, n => 1 }).unwrap_or_default();
        assert_eq!(out, "2 codes left|1 code left");
        env.add_template("bad", "{{ t('no-such-message') }}").unwrap_or_default();
        assert!(env.get_template("bad").and_then(|t| t.render(minijinja::context! {})).is_err());
    }
}
