//! Mail through a real SMTP conversation with a local sink started by the test.

use std::sync::{Arc, Mutex};

use portcullis_delivery::{SmtpSettings, SmtpTls};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use openidconnect::{Nonce, PkceCodeVerifier};

use crate::helpers::{Backend, PASSWORD, Page, TestApp, spawn_app_with};
use crate::mfa::hidden;
use portcullis_core::clock::Clock;

/// A minimal SMTP server (RFC 5321 subset) that accepts every message.
struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<Received>>>,
}

#[derive(Debug, Clone)]
struct Received {
    from: String,
    to: Vec<String>,
    data: String,
}

impl SmtpSink {
    async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A sink on a given port (0: any free one).
    async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink.test ESMTP ready\r\n").await.ok()?;
                    let mut current = Received { from: String::new(), to: Vec::new(), data: String::new() };
                    while let Some(line) = lines.next_line().await.ok()? {
                        let upper = line.to_ascii_uppercase();
                        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                        } else if upper.starts_with("MAIL FROM:") {
                            current.from = line[10..].trim().to_owned();
                            b"250 OK\r\n"
                        } else if upper.starts_with("RCPT TO:") {
                            current.to.push(line[8..].trim().to_owned());
                            b"250 OK\r\n"
                        } else if upper == "DATA" {
                            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await.ok()?;
                            let mut data = String::new();
                            while let Some(l) = lines.next_line().await.ok()? {
                                if l == "." {
                                    break;
                                }
                                data.push_str(l.strip_prefix('.').filter(|_| l.starts_with("..")).unwrap_or(&l));
                                data.push('\n');
                            }
                            current.data = data;
                            store.lock().unwrap().push(current.clone());
                            b"250 OK: queued\r\n"
                        } else if upper == "QUIT" {
                            write.write_all(b"221 Bye\r\n").await.ok()?;
                            return Some(());
                        } else {
                            b"250 OK\r\n"
                        };
                        write.write_all(reply).await.ok()?;
                    }
                    Some(())
                });
            }
        });
        Self { port, messages }
    }

    fn messages(&self) -> Vec<Received> {
        self.messages.lock().unwrap().clone()
    }

    /// The messages once there are at least `n` (notices are sent by a background task).
    async fn at_least(&self, n: usize) -> Vec<Received> {
        for _ in 0..100 {
            if self.messages().len() >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.messages()
    }
}

/// Undoes quoted-printable soft line breaks and escapes (RFC 2045 §6.7).
fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() && u8::from_str_radix(&joined[i + 1..i + 3], 16).is_ok() {
            out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Settings that send to the sink.
fn to_sink(sink: &SmtpSink) -> Option<SmtpSettings> {
    to_port(sink.port)
}

fn to_port(port: u16) -> Option<SmtpSettings> {
    Some(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Portcullis <no-reply@portcullis.test>".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_mail_is_delivered_over_smtp_and_its_link_works() {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| c.smtp = to_sink(&sink)).await else {
        return;
    };
    assert_eq!(app.sign_up("nora@example.com", PASSWORD).await.status, StatusCode::OK);
    assert!(app.outbox().is_empty(), "with SMTP configured, nothing goes to the outbox");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.from, "<no-reply@portcullis.test>");
    assert_eq!(m.to, vec!["<nora@example.com>"]);
    let data = decode_quoted_printable(&m.data);
    assert!(data.contains("Subject: Portcullis: confirm your email address"), "{data}");
    let start = data.find("/verify-email?token=").expect("link in the message");
    let link: String = data[start..].chars().take_while(|c| !c.is_whitespace()).collect();

    let token = link.split("token=").nth(1).unwrap().to_owned();
    let confirmed = app.submit(&link, "/verify-email", &[("token", &token)]).await;
    assert_eq!(confirmed.status, StatusCode::OK);
    assert_eq!(app.sign_in("nora@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smtp_server_is_reported_not_swallowed() {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "no-reply@portcullis.test".into(),
        })
    })
    .await
    else {
        return;
    };
    let page = app.sign_up("omar@example.com", PASSWORD).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("We could not send the email"), "{}", page.body);
}

/// A verified account without a factor signs in with its password; an
/// application asks for mfa; "Email me a code" (this operator lets email be
/// the only second factor). Returns the client, the
/// request's nonce and PKCE verifier, and the page asking for the code.
async fn email_code_for_mfa(app: &TestApp) -> (crate::oidc::RelyingParty, Nonce, PkceCodeVerifier, Page) {
    app.state.accounts().operators().create_user("ada@example.com", "Ada", PASSWORD, false, app.clock_now()).await.unwrap();
    app.sign_in("ada@example.com", PASSWORD).await;
    let (id, secret) = crate::oidc::register(app, false, portcullis_core::oauth::SigningAlg::ES256).await;
    let (rp, url, nonce, verifier) = crate::mfa::authorize_url(app, &id, secret.as_deref(), Some("mfa")).await;
    let step = app.get(url.strip_prefix(&app.base).unwrap()).await.location.unwrap();
    let page = app.get(&step).await;
    let sent = app.post("/login/verify/send", &[("method", "email"), ("next", &hidden(&page.body, "next"))], &page.body).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    (rp, nonce, verifier, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_code_arrives_over_smtp_in_text_and_html_and_signs_in() {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = to_sink(&sink);
        c.factors.email_requires_other_factor = false;
    })
    .await
    else {
        return;
    };
    let (rp, nonce, verifier, sent) = email_code_for_mfa(&app).await;
    let next = hidden(&sent.body, "next");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "one message through SMTP");
    assert_eq!(messages[0].to, vec!["<ada@example.com>"]);
    let data = decode_quoted_printable(&messages[0].data);
    let subject = data.lines().find_map(|l| l.strip_prefix("Subject: ")).expect("a subject").to_owned();
    let code = subject.rsplit(' ').next().unwrap().to_owned();
    assert!(subject.starts_with("Portcullis: your sign-in code is") && code.len() == 6, "{subject}");
    assert!(data.contains("multipart/alternative"), "text and HTML: {data}");
    assert!(data.contains("Content-Type: text/plain") && data.contains("Content-Type: text/html"), "{data}");
    assert!(data.contains(&format!("sign-in code for 127.0.0.1 is {code}")), "the requesting site is named: {data}");

    let done = app.post("/login/verify", &[("method", "email"), ("code", &code), ("next", &next)], &sent.body).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let back = app.get(&done.location.unwrap()).await.location.unwrap();
    let (amr, acr) = crate::mfa::claims_after(&app, &rp, &back, &nonce, verifier).await;
    assert_eq!((amr, acr.as_deref()), (vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()], Some("mfa")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_templates_replace_the_built_in_words() {
    let sink = SmtpSink::start().await;
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(templates.path().join("email")).unwrap();
    std::fs::write(templates.path().join("email/sign_in_code.subject.txt"), "Acme login code {{ code }}\n").unwrap();
    std::fs::write(templates.path().join("email/sign_in_code.txt"), "Hello from Acme. Code: {{ code }}, valid {{ minutes }} min.\n")
        .unwrap();
    let dir = templates.path().to_owned();
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = to_sink(&sink);
        c.messages.templates_dir = Some(dir);
        c.factors.email_requires_other_factor = false;
    })
    .await
    else {
        return;
    };
    email_code_for_mfa(&app).await;
    let data = decode_quoted_printable(&sink.messages()[0].data);
    assert!(data.contains("Subject: Acme login code "), "{data}");
    assert!(data.contains("Hello from Acme. Code: ") && data.contains(", valid 5 min."), "{data}");
    // The HTML part the operator did not replace is the built-in one.
    assert!(data.contains("Your sign-in code for 127.0.0.1 is"), "{data}");

    // A broken template stops the start, naming the file.
    std::fs::write(templates.path().join("email/sign_in_code.txt"), "{{ cod }}\n").unwrap();
    let mut config = app.config.clone();
    config.data_dir = crate::helpers::private_tempdir().keep();
    let clock = std::sync::Arc::new(app.clock.clone());
    let err = portcullis::Application::build(&config, clock).await.err().expect("a broken template is refused");
    assert!(err.to_string().contains("email/sign_in_code.txt"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_and_new_device_notices_arrive_over_smtp() {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = to_sink(&sink);
        c.lockout.max_failures = 3;
    })
    .await
    else {
        return;
    };
    let now = portcullis_core::clock::Clock::now(&app.clock);
    app.state.accounts().operators().create_user("ada@example.com", "Ada", PASSWORD, false, now).await.unwrap();
    let subjects = || -> Vec<String> {
        sink.messages()
            .iter()
            .map(|m| decode_quoted_printable(&m.data).lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned)).unwrap())
            .collect()
    };

    for _ in 0..3 {
        app.sign_in("ada@example.com", "wrong-password-x").await;
    }
    sink.at_least(1).await;
    assert_eq!(subjects(), vec!["Portcullis: your account is locked for 5 minutes"]);
    let data = decode_quoted_printable(&sink.messages()[0].data);
    assert!(data.contains("/forgot-password"), "the notice says what to do: {data}");

    app.clock.advance(6 * 60);
    assert_eq!(app.sign_in("ada@example.com", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(subjects().len(), 1, "the first browser an account uses sends no notice");
    let other = app.other_browser();
    let ua = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";
    let page = other.client.get(app.url("/login")).header("user-agent", ua).send().await.unwrap().text().await.unwrap();
    let form = [("email", "ada@example.com"), ("password", PASSWORD), ("csrf_token", &crate::helpers::csrf_token_in(&page))];
    other.client.post(app.url("/login")).header("user-agent", ua).form(&form).send().await.unwrap();
    sink.at_least(2).await;
    assert_eq!(subjects()[1], "Portcullis: a sign-in from a new device");
    let data = decode_quoted_printable(&sink.messages()[1].data);
    assert!(data.contains("Firefox 140 on Linux") && data.contains("127.0.0.1"), "the browser is named, not its user agent: {data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_waits_while_the_mail_server_is_down_and_is_sent_when_it_is_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = to_port(port);
        c.lockout.max_failures = 3;
    })
    .await
    else {
        return;
    };
    let accounts = app.state.accounts();
    accounts.operators().create_user("ada@example.com", "Ada", PASSWORD, false, app.clock.now()).await.unwrap();
    let statuses: Vec<StatusCode> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(app.sign_in("ada@example.com", "wrong-password-x").await.status);
        }
        v
    };
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "the lock does not wait for the mail server");
    // Let the server's own delivery task make (and fail) its first attempt, so it is idle from here on.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // Down: nothing is sent, and nothing is lost.
    assert_eq!(accounts.notices().deliver_notices(app.clock.now()).await.unwrap(), 0);
    let sink = SmtpSink::start_on(port).await;
    assert_eq!(accounts.notices().deliver_notices(app.clock.now()).await.unwrap(), 0, "not retried before its time");
    app.clock.advance(301);
    assert_eq!(accounts.notices().deliver_notices(app.clock.now()).await.unwrap(), 1, "sent once the server is back");
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert!(decode_quoted_printable(&messages[0].data).contains("Subject: Portcullis: your account is locked"));
    assert_eq!(accounts.notices().deliver_notices(app.clock.now()).await.unwrap(), 0, "and only once");
}

/// A mail server that accepts connections and never says a word: a mail sent
/// in the request would hold its answer until the SMTP timeout (15 s).
async fn silent_mail_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = connections.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (port, connections, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_links_and_emailed_codes_are_sent_after_the_answer_for_known_and_unknown_addresses_alike() {
    let (port, connections, server) = silent_mail_server().await;
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.smtp = to_port(port);
        c.factors.email_passwordless = true;
    })
    .await
    else {
        return;
    };
    app.state.accounts().operators().create_user("ada@example.com", "Ada", PASSWORD, false, app.clock.now()).await.unwrap();
    // The answer may not wait for the mail server: 10 s is well below its 15 s timeout.
    let client = reqwest::Client::builder().cookie_store(true).timeout(std::time::Duration::from_secs(10)).build().unwrap();
    for (page, field) in [("/forgot-password", "email"), ("/login/code", "email")] {
        let mut bodies = Vec::new();
        for email in ["ada@example.com", "nobody@example.com"] {
            let form = client.get(app.url(page)).send().await.unwrap().text().await.unwrap();
            let token = crate::helpers::csrf_token_in(&form);
            let r = client.post(app.url(page)).form(&[(field, email), ("csrf_token", token.as_str())]).send().await;
            let r = r.unwrap_or_else(|e| panic!("{page} for {email} waited on the mail server: {e}"));
            assert_eq!(r.status(), StatusCode::OK, "{page}");
            let body = r.text().await.unwrap().replace(email, "EMAIL");
            // Each page has a fresh CSRF token; everything else must be the same.
            let body = match body.contains("name=\"csrf_token\"") {
                true => body.replace(&crate::helpers::csrf_token_in(&body), "TOKEN"),
                false => body,
            };
            bodies.push(body);
        }
        assert_eq!(bodies[0], bodies[1], "{page}: the same answer for a known and an unknown address");
    }
    // The mail was still sent: the delivery task, not the request, is talking to the server.
    let mut waited = 0;
    while connections.load(std::sync::atomic::Ordering::SeqCst) == 0 && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the queued mail went out to the server");
    server.abort();
}
