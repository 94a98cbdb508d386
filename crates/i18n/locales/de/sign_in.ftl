# Anmelden, registrieren, Passwort zurücksetzen, zweiter Schritt, einen Faktor einrichten.

## Anmeldeseite
sign-in-title = Anmelden
sign-in-button = Anmelden
sign-in-passkey = Mit einem Passkey anmelden
sign-in-email-code-link = Einen Anmeldecode per E-Mail schicken
sign-in-email-code-rest = statt mein Passwort zu verwenden.
sign-in-forgot = Passwort vergessen?
notice-reauth-admin = Melden Sie sich zu Ihrer Sicherheit erneut an, um in der Administration etwas zu ändern.
notice-reauth-application = Die Anwendung bittet Sie, sich erneut anzumelden.

## Anmeldung mit einem Code per E-Mail
login-code-title = Mit einem Code per E-Mail anmelden
login-code-intro = Wir schicken Ihnen einen 6-stelligen Code per E-Mail, mit dem Sie sich ohne Passwort anmelden.
login-code-send = Anmeldecode per E-Mail schicken
login-code-password-instead = Stattdessen mit Passwort anmelden
send-another-code = Neuen Code senden
notice-email-code-sent = Wenn ein Konto { $email } verwendet, haben wir ihm einen Anmeldecode geschickt. Er gilt { $minutes } Minuten.

## Registrierung, Bestätigung, Zurücksetzen
sign-up-title = Konto erstellen
sign-up-name = Name (freiwillig)
sign-up-password-help = Mindestens 8 Zeichen. Ein paar ungewöhnliche Wörter ergeben ein starkes Passwort.
sign-up-button = Konto erstellen
sign-up-have-account = Sie haben schon ein Konto?
first-admin-title = Den ersten Administrator anlegen
first-admin-intro = Es gibt noch keinen Administrator. Diese Seite legt einen an; ihr Link funktioniert einmal, innerhalb einer Stunde nach dem Start des Servers.
first-admin-next = Danach richten Sie einen zweiten Faktor ein: Die Verwaltungskonsole öffnet sich, sobald Sie einen haben.
first-admin-button = Administrator anlegen
check-email-title = Sehen Sie in Ihre E-Mails
notice-sign-up-sent = Wir haben eine Nachricht an { $email } geschickt. Öffnen Sie den Link darin, um Ihre Adresse zu bestätigen, und melden Sie sich dann an.
verify-email-title = E-Mail-Adresse bestätigen
verify-email-button = E-Mail-Adresse bestätigen
email-confirmed-title = E-Mail-Adresse bestätigt
notice-email-confirmed = Ihre Adresse ist bestätigt. Sie können sich jetzt anmelden.
forgot-title = Passwort zurücksetzen
forgot-intro = Geben Sie Ihre E-Mail-Adresse ein. Wir schicken Ihnen einen Link, mit dem Sie ein neues Passwort wählen.
forgot-button = Link zum Zurücksetzen senden
notice-reset-sent = Wenn { $email } ein Konto hat, haben wir einen Link zum Wählen eines neuen Passworts dorthin geschickt. Der Link gilt eine Stunde.
reset-title = Neues Passwort wählen
reset-button = Neues Passwort festlegen
password-changed-title = Passwort geändert
notice-password-reset-done = Ihr Passwort wurde geändert und Sie wurden überall abgemeldet. Melden Sie sich mit Ihrem neuen Passwort an.

## Zweiter Schritt
second-step-title = Bestätigung in zwei Schritten
second-step-noscript = Sicherheitsschlüssel brauchen JavaScript. Schalten Sie es ein oder wählen Sie eine andere Methode.
remember-browser = Diesen Browser merken
remember-browser-help = { $count ->
    [one] Diesen Schritt in diesem Browser { $count } Tag lang überspringen. Nur auf einem Gerät, das Sie allein nutzen.
   *[other] Diesen Schritt in diesem Browser { $count } Tage lang überspringen. Nur auf einem Gerät, das Sie allein nutzen.
}
try-another-method = Andere Methode wählen
methods-title = Wählen Sie, wie Sie sich bestätigen
methods-enroll = Eine neue Bestätigungsmethode einrichten
error-unknown-method = Unbekannte Anmeldemethode.
error-method-sends-no-code = Diese Methode sendet keinen Code.

## Die Schritte (je ein Satz Wörter pro Bestätigungsweg)
step-password-words = Ihr Passwort
step-password-offer = Passwort eingeben
step-password-prompt = Ein Code, den wir Ihnen per E-Mail geschickt haben, ist ein Nachweis; Ihr Passwort ist der andere. Geben Sie das Passwort von { $email } ein.
step-webauthn-words = einen Sicherheitsschlüssel oder Passkey
step-webauthn-offer = Sicherheitsschlüssel oder Passkey verwenden
step-webauthn-prompt = Verwenden Sie Ihren Sicherheitsschlüssel oder Passkey für { $email }.
step-totp-words = eine Authenticator-App
step-totp-offer = Authenticator-App verwenden
step-totp-prompt = Öffnen Sie Ihre Authenticator-App und geben Sie den 6-stelligen Code für { $email } ein.
step-sms-words = einen Code per SMS
step-sms-offer = Code per SMS senden
step-sms-prompt = Geben Sie den 6-stelligen Code ein, den wir an Ihr Telefon geschickt haben.
step-sms-send-offer = Wir können einen 6-stelligen Code per SMS an Ihr Telefon senden.
step-sms-send-button = Code per SMS senden
step-sms-sent = Wir haben einen Code an { $to } gesendet. Er gilt { $minutes } Minuten.
step-sms-default-to = Ihr Telefon
step-sms-choice = Telefon
step-sms-caution = SMS sind weniger sicher als eine Authenticator-App oder ein Sicherheitsschlüssel.
step-email-words = einen Code per E-Mail
step-email-offer = Code per E-Mail senden
step-email-prompt = Geben Sie den 6-stelligen Code ein, den wir an { $email } geschickt haben.
step-email-send-offer = Wir können einen 6-stelligen Code an { $email } senden.
step-email-send-button = Code per E-Mail senden
step-email-sent = Wir haben einen Code an { $to } gesendet. Er gilt { $minutes } Minuten.
step-email-default-to = { $email }
step-email-choice = Adresse
step-recovery-words = einen Wiederherstellungscode
step-recovery-offer = Wiederherstellungscode verwenden
step-recovery-prompt = Geben Sie einen der Wiederherstellungscodes ein, die Sie beim Einrichten der Bestätigung in zwei Schritten gespeichert haben. Jeder Code funktioniert einmal.

## Womit eine Sitzung bestätigt wurde (Kontoseite)
method-password = Ihrem Passwort
method-passkey = einem Passkey
method-security_key = einem Sicherheitsschlüssel
method-totp = Ihrer Authenticator-App
method-sms_otp = einem Code per SMS
method-email_otp = einem Code per E-Mail
method-recovery_code = einem Wiederherstellungscode
method-remembered-browser = einem Browser, den wir uns auf Ihren Wunsch merken

## Einen Faktor einrichten (Sicherheitsseite und während einer Anmeldung)
enroll-title = Bestätigung in zwei Schritten einrichten
enroll-intro = Ihre Anmeldung verlangt eine Bestätigung in zwei Schritten. Richten Sie einen Bestätigungsweg ein, um die Anmeldung abzuschließen.
enroll-choose = Wählen Sie einen für { $email }. Weitere können Sie später auf Ihrer Sicherheitsseite hinzufügen.
enroll-verify-another-way = Anders bestätigen
totp-title = Authenticator-App einrichten
totp-help = Google Authenticator, Microsoft Authenticator, 1Password oder eine ähnliche App zeigt alle 30 Sekunden einen neuen Code.
totp-set-up = Authenticator-App einrichten
totp-scan = Scannen Sie diesen Code mit Google Authenticator, Microsoft Authenticator, 1Password oder einer ähnlichen App.
totp-qr-label = QR-Code für Ihre Authenticator-App
totp-type-key = Oder tippen Sie diesen Schlüssel in die App:
totp-enter-code = Geben Sie den 6-stelligen Code ein, den die App zeigt.
totp-default-name = Authenticator-App
device-name = Gerätename
passkey-name = Name des Passkeys
passkey-default-name = Mein Passkey
passkey-create = Passkey erstellen
passkey-help = Meldet Sie ohne Passwort an, entsperrt mit Fingerabdruck, Gesicht oder PIN.
security-key-name = Name des Sicherheitsschlüssels
security-key-default-name = Mein Sicherheitsschlüssel
security-key-add = Sicherheitsschlüssel hinzufügen
security-key-help = Ein Hardware-Schlüssel, den Sie einstecken oder antippen, nach Ihrem Passwort.
phone-help = Codes per SMS. Weniger sicher als eine App oder ein Sicherheitsschlüssel: Eine Nummer kann übernommen werden.
phone-number = Telefonnummer
phone-add = Telefonnummer hinzufügen
phone-confirm-title = Telefonnummer bestätigen
phone-confirm-intro = Wir haben einen 6-stelligen Code an { $phone } gesendet. Geben Sie ihn ein, um diese Nummer hinzuzufügen.
keys-need-javascript = Sicherheitsschlüssel und Passkeys brauchen JavaScript.
error-choose-key-kind = Wählen Sie einen Sicherheitsschlüssel oder einen Passkey.
recovery-title = Ihre Wiederherstellungscodes
recovery-heading = Speichern Sie Ihre Wiederherstellungscodes
recovery-intro = Wenn Sie Ihr Telefon verlieren, können Sie sich mit jedem dieser Codes einmal anmelden. Bewahren Sie sie sicher auf: Sie werden nur jetzt angezeigt.
notice-mfa-on = Die Bestätigung in zwei Schritten ist eingeschaltet.

## Was das Browser-Skript sagt (Sicherheitsschlüssel und Passkeys)
webauthn-cancelled = Die Anfrage wurde abgebrochen oder ist abgelaufen. Versuchen Sie es erneut oder wählen Sie eine andere Methode.
webauthn-already-registered = Dieser Sicherheitsschlüssel oder Passkey ist schon für Ihr Konto registriert.
webauthn-not-registered = Dieser Sicherheitsschlüssel oder Passkey ist hier nicht registriert.
webauthn-security-error = Ihr Browser hat abgelehnt: Unter der Adresse dieser Seite können keine Sicherheitsschlüssel verwendet werden.
webauthn-not-supported = Ihr Authenticator unterstützt nicht, was diese Website braucht.
webauthn-failed = Etwas ist schiefgegangen. Versuchen Sie es erneut.
webauthn-bad-answer = Der Server hat nicht wie erwartet geantwortet. Laden Sie die Seite neu und versuchen Sie es erneut.
webauthn-refused = Der Server hat die Anfrage abgelehnt.
webauthn-unsupported-browser = Dieser Browser unterstützt keine Sicherheitsschlüssel oder Passkeys. Wählen Sie eine andere Methode oder einen anderen Browser.
webauthn-prompt-create = Folgen Sie der Aufforderung Ihres Browsers, um ihn zu erstellen …
webauthn-prompt-get = Folgen Sie der Aufforderung Ihres Browsers …
webauthn-no-credential = Es wurde kein Zugangsschlüssel zurückgegeben.

## Anwendungen
form-post-title = Zurück zur Anwendung
form-post-heading = Zurück zur Anwendung …
form-post-noscript = JavaScript ist ausgeschaltet: Drücken Sie die Schaltfläche, um fortzufahren.
end-session-heading = Abmelden?
end-session-intro = Eine Anwendung hat darum gebeten, Sie von Portcullis abzumelden.
end-session-stay = Angemeldet bleiben
signed-out-title = Abgemeldet
notice-signed-out = Sie sind abgemeldet.
consent-title = { $client } erlauben?
consent-wants = { $client } möchte Sie anmelden.
consent-wants-more = { $client } möchte Sie anmelden und { $what } erhalten.
consent-self-registered = Diese Anwendung hat sich selbst registriert; Ihre Administration hat sie nicht hinzugefügt.
consent-answer-goes-to = Ihre Antwort geht an
consent-client = Client
consent-trust = Erlauben Sie es nur, wenn Sie ihr vertrauen. Sie können den Zugriff später auf Ihrer Sicherheitsseite entziehen.
consent-allow = Erlauben
consent-deny = Ablehnen
consent-to-web-site = die Website { $site }
consent-to-app = eine Anwendung auf Ihrem Gerät ({ $scheme })
scope-email = Ihre E-Mail-Adresse
scope-profile = Ihren Namen
consent-offline = Sie möchte außerdem angemeldet bleiben, während Sie nicht da sind.
error-authorization-expired = Diese Anmeldeanfrage ist abgelaufen. Gehen Sie zurück zur Anwendung und beginnen Sie erneut.
error-consent-needed = Diese Anwendung braucht zuerst Ihre Erlaubnis: Öffnen Sie sie und melden Sie sich erneut an.
error-choose-allow-or-deny = Wählen Sie „Erlauben“ oder „Ablehnen“.

## Freigabe auf dem Telefon (Push)
step-push-words = eine Freigabe auf Ihrem Telefon
step-push-offer = Anmeldeanfrage an mein Telefon senden
step-push-prompt = Wir senden eine Anmeldeanfrage für { $email } an Ihr Telefon. Tippen Sie dort in der Portcullis-App auf die Zahl, die diese Seite zeigt.
method-push = eine Freigabe auf Ihrem Telefon
push-tap-number = Tippen Sie auf Ihrem Telefon auf diese Zahl:
push-open-app = Nichts auf dem Telefon? Öffnen Sie die Portcullis-App auf Ihrem Telefon: Dort wartet die Anfrage.
push-denied-here = Die Anmeldung wurde auf Ihrem Telefon abgelehnt und ist beendet. Wenn Sie es doch waren, melden Sie sich erneut an.
push-wrong-number-here = Auf Ihrem Telefon wurde eine andere Zahl gewählt, daher ist die Anmeldung beendet. Melden Sie sich erneut an, um eine neue Zahl zu erhalten.
push-expired-here = Die Anfrage ist abgelaufen. Senden Sie eine neue oder wählen Sie eine andere Methode.
push-failed-here = Die Anfrage konnte nicht gesendet werden. Versuchen Sie es erneut oder wählen Sie eine andere Methode.
