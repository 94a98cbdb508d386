//! Message templates: built-in minijinja files (`crates/delivery/templates`),
//! each of which the operator may replace by a file of the same relative path
//! in `[messages] templates_dir`: `LANG/PATH` (`de/email/sign_in_code.txt`)
//! for one language, `PATH` for every language. The built-in files take
//! their words from the catalogs (`t("mail-…")`, `portcullis-i18n`), so
//! each message is written in the recipient's language.
//!
//! Every template is rendered once with sample values when the server starts,
//! with undefined variables an error, so a typo in an operator's template stops
//! the start with the file's name instead of failing a user's sign-in later.

use std::path::{Component, Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, context};
use portcullis_core::Language;
use portcullis_core::messages::{Message, MessageTemplates, RenderedEmail, TemplateError};

use crate::DeliveryError;

/// The built-in templates, by relative path.
const BUILT_IN: &[(&str, &str)] = &[
    ("email/layout.html", include_str!("../templates/email/layout.html")),
    ("email/verify_email.subject.txt", include_str!("../templates/email/verify_email.subject.txt")),
    ("email/verify_email.txt", include_str!("../templates/email/verify_email.txt")),
    ("email/verify_email.html", include_str!("../templates/email/verify_email.html")),
    ("email/sign_up_attempt.subject.txt", include_str!("../templates/email/sign_up_attempt.subject.txt")),
    ("email/sign_up_attempt.txt", include_str!("../templates/email/sign_up_attempt.txt")),
    ("email/sign_up_attempt.html", include_str!("../templates/email/sign_up_attempt.html")),
    ("email/password_reset.subject.txt", include_str!("../templates/email/password_reset.subject.txt")),
    ("email/password_reset.txt", include_str!("../templates/email/password_reset.txt")),
    ("email/password_reset.html", include_str!("../templates/email/password_reset.html")),
    ("email/password_changed.subject.txt", include_str!("../templates/email/password_changed.subject.txt")),
    ("email/password_changed.txt", include_str!("../templates/email/password_changed.txt")),
    ("email/password_changed.html", include_str!("../templates/email/password_changed.html")),
    ("email/sign_in_code.subject.txt", include_str!("../templates/email/sign_in_code.subject.txt")),
    ("email/sign_in_code.txt", include_str!("../templates/email/sign_in_code.txt")),
    ("email/sign_in_code.html", include_str!("../templates/email/sign_in_code.html")),
    ("email/factor_added.subject.txt", include_str!("../templates/email/factor_added.subject.txt")),
    ("email/factor_added.txt", include_str!("../templates/email/factor_added.txt")),
    ("email/factor_added.html", include_str!("../templates/email/factor_added.html")),
    ("email/factor_removed.subject.txt", include_str!("../templates/email/factor_removed.subject.txt")),
    ("email/factor_removed.txt", include_str!("../templates/email/factor_removed.txt")),
    ("email/factor_removed.html", include_str!("../templates/email/factor_removed.html")),
    ("email/authenticator_cloned.subject.txt", include_str!("../templates/email/authenticator_cloned.subject.txt")),
    ("email/authenticator_cloned.txt", include_str!("../templates/email/authenticator_cloned.txt")),
    ("email/authenticator_cloned.html", include_str!("../templates/email/authenticator_cloned.html")),
    ("email/recovery_code_used.subject.txt", include_str!("../templates/email/recovery_code_used.subject.txt")),
    ("email/recovery_code_used.txt", include_str!("../templates/email/recovery_code_used.txt")),
    ("email/recovery_code_used.html", include_str!("../templates/email/recovery_code_used.html")),
    ("email/new_device_sign_in.subject.txt", include_str!("../templates/email/new_device_sign_in.subject.txt")),
    ("email/new_device_sign_in.txt", include_str!("../templates/email/new_device_sign_in.txt")),
    ("email/new_device_sign_in.html", include_str!("../templates/email/new_device_sign_in.html")),
    ("email/sign_in_denied_on_phone.subject.txt", include_str!("../templates/email/sign_in_denied_on_phone.subject.txt")),
    ("email/sign_in_denied_on_phone.txt", include_str!("../templates/email/sign_in_denied_on_phone.txt")),
    ("email/sign_in_denied_on_phone.html", include_str!("../templates/email/sign_in_denied_on_phone.html")),
    ("email/account_locked.subject.txt", include_str!("../templates/email/account_locked.subject.txt")),
    ("email/account_locked.txt", include_str!("../templates/email/account_locked.txt")),
    ("email/account_locked.html", include_str!("../templates/email/account_locked.html")),
    ("sms/sign_in_code.txt", include_str!("../templates/sms/sign_in_code.txt")),
    ("sms/phone_confirmation_code.txt", include_str!("../templates/sms/phone_confirmation_code.txt")),
];

/// Message templates, built-in or the operator's.
pub struct Templates {
    env: Environment<'static>,
    product: String,
    site: String,
    base_url: String,
}

/// `name` as a path under `dir`, refusing anything that could leave it.
fn inside(dir: &Path, name: &str) -> Option<PathBuf> {
    let relative = Path::new(name);
    relative.components().all(|c| matches!(c, Component::Normal(_))).then(|| dir.join(relative))
}

impl Templates {
    /// Loads the templates for `product` served at `base_url`, preferring files
    /// in `dir`; checks each one by rendering it with sample values.
    pub fn new(product: &str, base_url: &str, dir: Option<&Path>) -> Result<Self, DeliveryError> {
        let bad = |message: String| DeliveryError::Setting { key: "messages.templates_dir", message };
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(bad(format!("{} is not a directory", dir.display())));
        }
        let url = url::Url::parse(base_url).map_err(|e| DeliveryError::Setting { key: "issuer", message: e.to_string() })?;
        let mut env = Environment::new();
        // A misspelt variable is an error, not an empty string in a user's mailbox.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Keep the final newline of text bodies.
        env.set_keep_trailing_newline(true);
        portcullis_i18n::install(&mut env);
        let overrides = dir.map(Path::to_owned);
        // `LANG/PATH`: the operator's file for that language, else theirs for
        // every language, else the built-in one.
        env.set_loader(move |name| {
            let generic = name.split_once('/').filter(|(lang, _)| Language::parse(lang).is_some()).map_or(name, |(_, rest)| rest);
            for candidate in [name, generic] {
                if let Some(path) = overrides.as_deref().and_then(|d| inside(d, candidate))
                    && path.is_file()
                {
                    return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("cannot read {}: {e}", path.display()))
                    });
                }
            }
            Ok(BUILT_IN.iter().find(|(n, _)| *n == generic).map(|(_, source)| (*source).to_owned()))
        });
        let templates =
            Self { env, product: product.to_owned(), site: url.host_str().unwrap_or_default().to_owned(), base_url: base_url.to_owned() };
        for language in Language::ALL {
            for example in Message::examples() {
                if example.by_email() {
                    templates.email(&example, language).map_err(|e| bad(e.to_string()))?;
                }
                if example.by_sms() {
                    templates.text_message(&example, language).map_err(|e| bad(e.to_string()))?;
                }
            }
        }
        Ok(templates)
    }

    fn render(&self, name: &str, language: Language, message: &Message) -> Result<String, TemplateError> {
        let name = &format!("{language}/{name}");
        let failed = |e: minijinja::Error| {
            // The chain says where in the file it broke.
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason.push_str(&format!(": {s}"));
                source = s.source();
            }
            TemplateError { template: name.to_owned(), reason }
        };
        let template = self.env.get_template(name).map_err(failed)?;
        let ctx = context! {
            product => &self.product, site => &self.site, base_url => &self.base_url, lang => language.code(),
            ..minijinja::Value::from_serialize(message)
        };
        template.render(ctx).map_err(failed)
    }
}

impl MessageTemplates for Templates {
    fn email(&self, message: &Message, language: Language) -> Result<RenderedEmail, TemplateError> {
        let kind = message.kind();
        let subject = self.render(&format!("email/{kind}.subject.txt"), language, message)?;
        // One line: a subject is a header, and a header line break would be an injection.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if subject.is_empty() {
            return Err(TemplateError { template: format!("email/{kind}.subject.txt"), reason: "the subject is empty".into() });
        }
        Ok(RenderedEmail {
            subject,
            text: self.render(&format!("email/{kind}.txt"), language, message)?,
            html: self.render(&format!("email/{kind}.html"), language, message)?,
        })
    }

    fn text_message(&self, message: &Message, language: Language) -> Result<String, TemplateError> {
        Ok(self.render(&format!("sms/{}.txt", message.kind()), language, message)?.trim_end().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> Message {
        Message::SignInCode { code: "042137".into(), minutes: 5 }
    }

    #[test]
    fn built_in_templates_name_the_product_site_and_code() {
        let t = Templates::new("Acme ID", "https://id.acme.test:8443", None).unwrap();
        let email = t.email(&code(), Language::En).unwrap();
        assert_eq!(email.subject, "Acme ID: your sign-in code is 042137");
        assert!(email.text.contains("Your Acme ID sign-in code for id.acme.test is 042137"), "{}", email.text);
        assert!(email.text.contains("5 minutes"));
        assert!(email.html.contains(">042137</p>") && email.html.contains("<!doctype html>"), "{}", email.html);
        let sms = t.text_message(&code(), Language::En).unwrap();
        assert!(sms.starts_with("042137 is your Acme ID sign-in code for id.acme.test."), "{sms}");
        // WebOTP (origin-bound one-time codes): the last line binds the code to the site.
        assert!(sms.ends_with("\n@id.acme.test #042137"), "{sms}");
    }

    #[test]
    fn html_escapes_what_a_user_named_and_text_does_not() {
        let t = Templates::new("Portcullis", "https://id.example.com", None).unwrap();
        let m = Message::FactorAdded { method: "kind-passkey".into(), name: "<b>Laptop</b> & co".into() };
        let email = t.email(&m, Language::En).unwrap();
        assert!(
            email.html.contains("&lt;b&gt;Laptop&lt;&#x2f;b&gt; &amp; co") || email.html.contains("&lt;b&gt;Laptop&lt;/b&gt; &amp; co")
        );
        assert!(!email.html.contains("<b>Laptop"));
        assert!(email.text.contains("\"<b>Laptop</b> & co\""));
    }

    #[test]
    fn an_operator_directory_overrides_single_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sms")).unwrap();
        std::fs::write(dir.path().join("sms/sign_in_code.txt"), "{{ product }} code {{ code }} ({{ minutes }} min)\n").unwrap();
        let t = Templates::new("Acme ID", "https://id.acme.test", Some(dir.path())).unwrap();
        assert_eq!(t.text_message(&code(), Language::En).unwrap(), "Acme ID code 042137 (5 min)");
        // Files it does not replace stay built in.
        assert_eq!(t.email(&code(), Language::En).unwrap().subject, "Acme ID: your sign-in code is 042137");
    }

    #[test]
    fn messages_are_written_in_the_recipients_language() {
        let t = Templates::new("Acme ID", "https://id.acme.test", None).unwrap();
        let email = t.email(&code(), Language::De).unwrap();
        assert_eq!(email.subject, "Acme ID: Ihr Anmeldecode ist 042137");
        assert!(email.text.contains("Ihr Acme ID-Anmeldecode für id.acme.test ist 042137"), "{}", email.text);
        assert!(email.html.contains("<html lang=\"de\">"), "{}", email.html);
        let sms = t.text_message(&code(), Language::De).unwrap();
        assert!(sms.starts_with("042137 ist Ihr Acme ID-Anmeldecode für id.acme.test."), "{sms}");
        assert!(sms.ends_with("\n@id.acme.test #042137"), "{sms}");
        let added = Message::FactorAdded { method: "kind-passkey".into(), name: "Laptop".into() };
        assert!(t.email(&added, Language::De).unwrap().text.contains("Passkey"), "the kind is in words too");
        assert!(t.email(&added, Language::En).unwrap().text.contains("A passkey named \"Laptop\""));
        let browser = Message::NewDeviceSignIn {
            browser: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0".into(),
            ip: "192.0.2.1".into(),
            country: String::new(),
        };
        assert!(t.email(&browser, Language::En).unwrap().text.contains("Firefox 133 on Linux"));
        assert!(t.email(&browser, Language::De).unwrap().text.contains("Firefox 133 unter Linux"));
    }

    #[test]
    fn an_operator_file_for_one_language_replaces_only_that_language() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("de/sms")).unwrap();
        std::fs::write(dir.path().join("de/sms/sign_in_code.txt"), "Code {{ code }} für {{ product }}\n").unwrap();
        let t = Templates::new("Acme ID", "https://id.acme.test", Some(dir.path())).unwrap();
        assert_eq!(t.text_message(&code(), Language::De).unwrap(), "Code 042137 für Acme ID");
        assert!(t.text_message(&code(), Language::En).unwrap().starts_with("042137 is your Acme ID sign-in code"));
    }

    #[test]
    fn a_broken_operator_template_stops_the_start_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/password_reset.txt"), "Reset: {{ lnk }}\n").unwrap();
        let err = Templates::new("Acme ID", "https://id.acme.test", Some(dir.path())).err().expect("a misspelt variable is refused");
        let text = err.to_string();
        assert!(text.contains("messages.templates_dir") && text.contains("email/password_reset.txt"), "{text}");

        std::fs::write(dir.path().join("email/password_reset.txt"), "Reset: {% if %}\n").unwrap();
        assert!(Templates::new("Acme ID", "https://id.acme.test", Some(dir.path())).is_err(), "a syntax error is refused");

        let missing = dir.path().join("nowhere");
        assert!(Templates::new("Acme ID", "https://id.acme.test", Some(&missing)).is_err());
    }

    #[test]
    fn a_subject_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/password_changed.subject.txt"), "Password\r\nBcc: victim@example.com\n").unwrap();
        let t = Templates::new("Acme ID", "https://id.acme.test", Some(dir.path())).unwrap();
        assert_eq!(t.email(&Message::PasswordChanged, Language::En).unwrap().subject, "Password Bcc: victim@example.com");
    }

    #[test]
    fn paths_cannot_leave_the_operator_directory() {
        let dir = Path::new("/srv/templates");
        assert_eq!(inside(dir, "email/x.txt"), Some(dir.join("email/x.txt")));
        assert_eq!(inside(dir, "../etc/passwd"), None);
        assert_eq!(inside(dir, "/etc/passwd"), None);
    }
}
