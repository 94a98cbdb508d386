# E-Mails und SMS. $product ist der Name des Produkts, $site der Host des Servers.
mail-footer = Diese Nachricht wurde von { $product } unter { $site } gesendet.
mail-or-open-link = Oder öffnen Sie diesen Link:
mail-sign-in = Anmelden
mail-reset-password = Passwort zurücksetzen
mail-review-security = Sitzungen und Anmeldemethoden prüfen
mail-turn-on-mfa = Bestätigung in zwei Schritten einschalten
mail-browser = Browser
mail-address = Adresse
mail-if-not-you-reset = Wenn Sie das nicht waren, setzen Sie Ihr Passwort jetzt zurück:
mail-if-not-you-review = Wenn Sie das nicht waren, ändern Sie Ihr Passwort und prüfen Sie Ihre Anmeldemethoden:
mail-if-unexpected-review = Wenn Sie das nicht erwartet haben, ändern Sie Ihr Passwort und prüfen Sie Ihre Anmeldemethoden:
mail-if-not-you-reset-and-review = Wenn Sie das nicht waren, setzen Sie Ihr Passwort jetzt zurück und prüfen Sie Ihre Anmeldemethoden:

mail-verify-email-subject = { $product }: Bestätigen Sie Ihre E-Mail-Adresse
mail-verify-email-intro = Bestätigen Sie Ihre E-Mail-Adresse, um die Einrichtung Ihres { $product }-Kontos abzuschließen.
mail-verify-email-button = Meine Adresse bestätigen
mail-verify-email-expiry = { $hours ->
    [one] Der Link funktioniert einmal und läuft in { $hours } Stunde ab. Wenn Sie sich nicht registriert haben, ignorieren Sie diese Nachricht.
   *[other] Der Link funktioniert einmal und läuft in { $hours } Stunden ab. Wenn Sie sich nicht registriert haben, ignorieren Sie diese Nachricht.
}

mail-sign-up-attempt-subject = { $product }: Registrierungsversuch mit Ihrer Adresse
mail-sign-up-attempt-intro = Jemand, vielleicht Sie, hat versucht, mit dieser Adresse ein { $product }-Konto zu erstellen. Die Adresse hat schon eines.
mail-sign-up-attempt-if-you = Wenn Sie es waren, melden Sie sich an oder setzen Sie Ihr Passwort zurück:
mail-sign-up-attempt-if-not-you = Wenn Sie es nicht waren, können Sie diese Nachricht ignorieren.

mail-password-reset-subject = { $product }: Passwort zurücksetzen
mail-password-reset-intro = Jemand hat darum gebeten, das Passwort Ihres { $product }-Kontos zurückzusetzen.
mail-password-reset-open = Um ein neues Passwort zu wählen, öffnen Sie:
mail-password-reset-button = Neues Passwort wählen
mail-password-reset-expiry = Der Link funktioniert einmal und läuft in { $minutes } Minuten ab. Wenn Sie nicht darum gebeten haben, ignorieren Sie diese Nachricht: Ihr Passwort bleibt, wie es ist.

mail-password-changed-subject = { $product }: Ihr Passwort wurde geändert
mail-password-changed-intro = Das Passwort Ihres { $product }-Kontos wurde gerade geändert, und andere Sitzungen wurden abgemeldet.

mail-sign-in-code-subject = { $product }: Ihr Anmeldecode ist { $code }
mail-sign-in-code-intro = Ihr { $product }-Anmeldecode für { $site } ist { $code }
mail-sign-in-code-lead = Ihr Anmeldecode für { $site } ist
mail-sign-in-code-expiry = { $minutes ->
    [one] Er läuft in { $minutes } Minute ab und funktioniert einmal. Geben Sie ihn niemandem: { $product } fragt Sie nie per Telefon oder E-Mail danach.
   *[other] Er läuft in { $minutes } Minuten ab und funktioniert einmal. Geben Sie ihn niemandem: { $product } fragt Sie nie per Telefon oder E-Mail danach.
}
mail-sign-in-code-not-you = Wenn Sie sich nicht anmelden wollten, kennt vielleicht jemand Ihr Passwort: Ändern Sie es.

mail-factor-added-subject = { $product }: Eine Anmeldemethode wurde hinzugefügt
mail-factor-added-intro = { $kind ->
    [kind-totp] Eine Authenticator-App
    [kind-phone] Eine Telefonnummer
    [kind-security_key] Ein Sicherheitsschlüssel
    [kind-passkey] Ein Passkey
    [kind-push_device] Ein Telefon für Anmeldefreigaben
   *[other] Eine Anmeldemethode
} namens „{ $name }“ wurde Ihrem { $product }-Konto hinzugefügt.
mail-factor-removed-subject = { $product }: Eine Anmeldemethode wurde entfernt
mail-factor-removed-intro = Die Anmeldemethode „{ $name }“ wurde aus Ihrem { $product }-Konto entfernt.

mail-authenticator-cloned-subject = { $product }: Ein Sicherheitsschlüssel wurde deaktiviert
mail-authenticator-cloned-intro = Ihr Sicherheitsschlüssel oder Passkey „{ $name }“ meldete einen niedrigeren Nutzungszähler als zuvor. Das kann bedeuten, dass jemand ihn kopiert hat. Wir haben ihn deaktiviert.

mail-recovery-code-used-subject = { $product }: Ein Wiederherstellungscode wurde verwendet
mail-recovery-code-used-intro = { $count ->
    [one] Gerade wurde ein Wiederherstellungscode verwendet, um sich bei Ihrem { $product }-Konto anzumelden. { $count } Wiederherstellungscode bleibt übrig.
   *[other] Gerade wurde ein Wiederherstellungscode verwendet, um sich bei Ihrem { $product }-Konto anzumelden. { $count } Wiederherstellungscodes bleiben übrig.
}

mail-new-device-subject = { $product }: Eine Anmeldung von einem neuen Gerät
mail-new-device-intro = Bei Ihrem { $product }-Konto hat sich gerade ein Browser angemeldet, den es noch nie verwendet hat:
mail-new-device-if-you = Wenn Sie das waren, ist nichts zu tun.
mail-new-device-if-not-you = Wenn nicht, ändern Sie jetzt Ihr Passwort und prüfen Sie Ihre Sitzungen und Anmeldemethoden:

mail-account-locked-subject = { $product }: Ihr Konto ist für { $minutes } Minuten gesperrt
mail-account-locked-intro = Es gab zu viele fehlgeschlagene Anmeldeversuche bei Ihrem { $product }-Konto, deshalb ist es für { $minutes } Minuten gesperrt.
mail-account-locked-if-you = Wenn Sie das waren, warten Sie und versuchen Sie es erneut, oder setzen Sie Ihr Passwort zurück:
mail-account-locked-if-not-you = Wenn Sie es nicht waren, versucht vielleicht jemand, Ihr Passwort zu erraten: Wählen Sie ein starkes und schalten Sie die Bestätigung in zwei Schritten ein:

sms-sign-in-code = { $code } ist Ihr { $product }-Anmeldecode für { $site }. Er läuft in { $minutes } Min. ab. Geben Sie ihn nicht weiter.
sms-phone-confirmation-code = { $code } ist Ihr { $product }-Code zur Bestätigung dieser Telefonnummer. Er läuft in { $minutes } Min. ab.

mail-push-denied-subject = { $product }: Eine Anmeldung wurde auf Ihrem Telefon abgelehnt
mail-push-denied-intro = Eine Anmeldung bei Ihrem { $product }-Konto wurde auf Ihrem Telefon abgelehnt („Das war ich nicht“) und beendet. Sie kam von:
mail-push-denied-advice = Wer es auch war, kannte Ihr Passwort: Ändern Sie es jetzt und prüfen Sie Ihre Anmeldemethoden:
