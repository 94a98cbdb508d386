# Wörter, die alle Seiten teilen: Felder, Schaltflächen, Daten, Listen, Fehler.

## Daten (UTC)
date = { $day }. { $month } { $year }
date-time = { $date }, { $time } UTC
month-1 = Januar
month-2 = Februar
month-3 = März
month-4 = April
month-5 = Mai
month-6 = Juni
month-7 = Juli
month-8 = August
month-9 = September
month-10 = Oktober
month-11 = November
month-12 = Dezember
added-on = hinzugefügt am { $date }
last-used-on = zuletzt verwendet am { $date }
since = seit { $date }

## Aufzählungen im Satz
list-and = { $first } und { $last }
list-or = { $first } oder { $last }

## Geräte und Orte
device-unknown = Unbekannter Browser
device-command-line = die Befehlszeile
device-on = { $browser } unter { $os }
place-unknown = eine unbekannte Adresse

## Felder und Schaltflächen
field-email = E-Mail
field-password = Passwort
field-confirm-password = Passwort bestätigen
field-current-password = Aktuelles Passwort
field-new-password = Neues Passwort
field-confirm-new-password = Neues Passwort bestätigen
field-code = Code
field-recovery-code = Wiederherstellungscode
continue = Weiter
not-now = Jetzt nicht
not-now-continue = Jetzt nicht, weiter
save = Speichern
search = Suchen
filter = Filtern
rename = Umbenennen
remove-named = { $name } entfernen
copy = Kopieren
copied = Kopiert
copy-failed = Kopieren fehlgeschlagen: markieren und kopieren Sie die Codes selbst
download = Herunterladen
verify = Bestätigen
sign-out = Abmelden
back-to-account = Zurück zu Ihrem Konto
back-to-security = Zurück zur Sicherheit
back-to-sign-in = Zurück zur Anmeldung
col-when = Wann
col-what = Was
col-from = Von
col-user = Benutzer
col-status = Status
col-actions = Aktionen
col-event = Ereignis
col-application = Anwendung
col-detail = Einzelheiten

## Seitentitel von Fehlern, nach Status
status-400 = Ungültige Anfrage
status-401 = Nicht angemeldet
status-403 = Nicht erlaubt
status-404 = Nicht gefunden
status-409 = Konflikt
status-413 = Zu groß
status-415 = Falsche Art von Anfrage
status-422 = Bitte prüfen Sie das Formular
status-429 = Zu viele Anfragen
status-500 = Etwas ist schiefgegangen
status-501 = Nicht verfügbar
status-503 = Gerade nicht verfügbar
status-other = Fehler
error-start-page = Zur Startseite

## Fehler
error-busy = Gerade melden sich sehr viele Menschen an. Versuchen Sie es gleich noch einmal.
error-database-unavailable = Portcullis erreicht seine Datenbank gerade nicht. Versuchen Sie es gleich noch einmal.
error-internal = Bei uns ist etwas schiefgegangen. Versuchen Sie es gleich noch einmal.
error-unsupported-media-type = Senden Sie dieses Formular als application/x-www-form-urlencoded.
error-payload-too-large = Die Anfrage ist zu groß.
error-too-many-requests = Zu viele Anfragen. Warten Sie { $seconds } Sekunden und versuchen Sie es dann erneut.
error-page-not-found = Diese Seite gibt es nicht.
error-sign-in-required = Melden Sie sich an, um diese Seite zu sehen.
error-form-malformed = Das Formular ist unvollständig oder fehlerhaft: { $detail }
error-request-nul = Die Anfrage ist fehlerhaft: ein Wert enthält ein NUL-Zeichen.
error-csrf-other-site = Dieses Formular wurde von einer anderen Website gesendet und deshalb abgelehnt.
error-csrf-no-cookie = Ihr Browser hat unser Sicherheits-Cookie nicht gesendet. Erlauben Sie Cookies für diese Website, laden Sie die Seite neu und versuchen Sie es erneut.
error-csrf-expired = Dieses Formular ist abgelaufen oder stammt nicht von dieser Website. Laden Sie die Seite neu und versuchen Sie es erneut.
error-oauth-refused = Die Anfrage der Anwendung wurde abgelehnt: { $detail }.
error-invalid-email = Geben Sie eine gültige E-Mail-Adresse ein, etwa name@example.com.
error-password-too-short = Verwenden Sie mindestens { $count } Zeichen.
error-password-too-long = Verwenden Sie höchstens { $count } Zeichen.
error-password-too-weak = Dieses Passwort ist zu leicht zu erraten. { $detail }
error-password-breached = Dieses Passwort ist bei einem Datenleck bekannt geworden, deshalb probieren Angreifer es zuerst. Wählen Sie ein anderes.
error-password-mismatch = Die Passwörter stimmen nicht überein.
error-invalid-credentials = E-Mail-Adresse oder Passwort ist falsch.
error-wrong-current-password = Ihr aktuelles Passwort ist falsch.
error-invalid-password = Dieses Passwort ist falsch.
error-locked = { $minutes ->
    [one] Zu viele Fehlversuche. Versuchen Sie es in { $minutes } Minute erneut.
   *[other] Zu viele Fehlversuche. Versuchen Sie es in { $minutes } Minuten erneut.
}
error-email-not-verified = Bestätigen Sie zuerst Ihre E-Mail-Adresse: Wir haben Ihnen einen neuen Link geschickt.
error-invalid-link = Dieser Link ist ungültig oder abgelaufen. Fordern Sie einen neuen an.
error-setup-link-unusable = Dieser Einrichtungslink ist abgelaufen oder wurde schon benutzt, oder es gibt bereits einen Administrator. Solange es keinen Administrator gibt, protokolliert jeder Start des Servers einen neuen Link; auf der Kommandozeile geht auch: portcullis user create --admin
error-email-in-use = Zu dieser Adresse gibt es bereits ein Konto, und es kann von jemand anderem stammen: Wählen Sie eine andere Adresse. (Um diese zu verwenden, löschen Sie das Konto zuerst auf der Kommandozeile: portcullis user delete --email EMAIL)
error-invalid-code = Dieser Code stimmt nicht oder wurde schon verwendet. Prüfen Sie Ihre App und versuchen Sie es erneut.
error-key-not-accepted = Ihr Sicherheitsschlüssel oder Passkey wurde nicht akzeptiert. Versuchen Sie es erneut oder wählen Sie eine andere Methode.
error-cloned-authenticator = Ihr Sicherheitsschlüssel „{ $name }“ meldete einen niedrigeren Nutzungszähler als zuvor. Das kann bedeuten, dass er kopiert wurde. Wir haben ihn deaktiviert: Melden Sie sich anders an und prüfen Sie dann Ihre Sicherheitsseite.
error-webauthn-unavailable = Sicherheitsschlüssel und Passkeys sind auf diesem Server nicht verfügbar.
error-phishing-resistant-needed = Diese Anwendung verlangt einen Sicherheitsschlüssel oder Passkey. Fügen Sie auf Ihrer Sicherheitsseite einen hinzu und versuchen Sie es dann erneut.
error-invalid-phone = Geben Sie die Nummer im internationalen Format mit Ländervorwahl ein, etwa +49 151 23456789.
error-sms-delivery = Wir konnten die SMS nicht senden. Versuchen Sie es später erneut oder wählen Sie eine andere Methode.
error-code-sent-recently = Wir haben Ihnen gerade erst einen Code geschickt. Warten Sie { $seconds } Sekunden, bevor Sie einen neuen anfordern.
error-too-many-codes = { $minutes ->
    [one] Es wurden zu viele Codes gesendet. Versuchen Sie es in { $minutes } Minute erneut oder wählen Sie eine andere Methode.
   *[other] Es wurden zu viele Codes gesendet. Versuchen Sie es in { $minutes } Minuten erneut oder wählen Sie eine andere Methode.
}
error-reauthentication-required = Melden Sie sich zu Ihrer Sicherheit erneut an, um zu ändern, wie Sie sich anmelden.
error-second-factor-needed = Bestätigen Sie zu Ihrer Sicherheit Ihren zweiten Faktor, um zu ändern, wie Sie sich anmelden.
error-sign-in-expired = Diese Anmeldung ist abgelaufen. Bitte melden Sie sich erneut an.
error-step-not-allowed = Dieser Schritt gehört nicht zu Ihrer Anmeldung. Beginnen Sie erneut auf der Anmeldeseite.
error-too-many-answers = Zu viele falsche Antworten für diese Anmeldung. Melden Sie sich erneut an, um eine neue zu beginnen.
error-no-usable-factor = Keine Ihrer Anmeldemethoden kann hier verwendet werden, und keine kann eingerichtet werden. Wenden Sie sich an Ihre Administration.
error-recovery-codes-need-a-factor = Richten Sie zuerst die Bestätigung in zwei Schritten ein: Wiederherstellungscodes vertreten einen zweiten Faktor.
error-last-factor = Sie können Ihre letzte Anmeldemethode nicht entfernen, solange Ihr Konto die Bestätigung in zwei Schritten verlangt. Fügen Sie zuerst eine weitere hinzu.
error-invalid-input = { $detail }
error-factor-required-by-application = Diese Anwendung akzeptiert als zweiten Schritt nur { $methods }. Fügen Sie auf Ihrer Sicherheitsseite etwas davon hinzu und versuchen Sie es dann erneut.
error-account-disabled = Dieses Konto ist deaktiviert. Wenden Sie sich an Ihre Administration.
error-sign-in-denied = Die Sicherheitsrichtlinie Ihrer Organisation erlaubt die Anmeldung von hier aus nicht. Wenden Sie sich an Ihre Administration.
error-not-found = Nicht gefunden.
error-invalid-name = Geben Sie einen Namen mit 1 bis 64 Zeichen ein.
error-email-delivery = Wir konnten die E-Mail nicht senden. Versuchen Sie es später erneut.
error-unknown-language = Diese Sprache ist nicht verfügbar.

## Passwort-Ratschläge (zxcvbn)
pw-straight-rows-of-keys-are-easy-to-guess = Gerade Tastenreihen sind leicht zu erraten.
pw-short-keyboard-patterns-are-easy-to-guess = Kurze Tastaturmuster sind leicht zu erraten.
pw-repeats-like-aaa-are-easy-to-guess = Wiederholungen wie „aaa“ sind leicht zu erraten.
pw-repeats-like-abc-abc-are-only-slightly-harder-to-guess = Wiederholungen wie „abcabcabc“ sind kaum schwerer zu erraten als „abc“.
pw-this-is-a-top-10-password = Dies ist eines der 10 häufigsten Passwörter.
pw-this-is-a-top-100-password = Dies ist eines der 100 häufigsten Passwörter.
pw-this-is-a-common-password = Dies ist ein sehr häufiges Passwort.
pw-this-is-similar-to-a-commonly-used-password = Dies ähnelt einem häufig verwendeten Passwort.
pw-sequences-like-abc-are-easy-to-guess = Folgen wie abc oder 6543 sind leicht zu erraten.
pw-recent-years-are-easy-to-guess = Jahreszahlen der letzten Zeit sind leicht zu erraten.
pw-a-word-by-itself-is-easy-to-guess = Ein einzelnes Wort ist leicht zu erraten.
pw-dates-are-often-easy-to-guess = Daten sind oft leicht zu erraten.
pw-names-and-surnames-by-themselves-are-easy-to-guess = Vor- und Nachnamen allein sind leicht zu erraten.
pw-common-names-and-surnames-are-easy-to-guess = Häufige Vor- und Nachnamen sind leicht zu erraten.
pw-use-a-few-words-avoid-common-phrases = Verwenden Sie ein paar Wörter und vermeiden Sie gängige Redewendungen.
pw-no-need-for-symbols-digits-or-uppercase-letters = Sonderzeichen, Ziffern oder Großbuchstaben sind nicht nötig.
pw-add-another-word-or-two = Fügen Sie ein oder zwei weitere Wörter hinzu. Ungewöhnliche Wörter sind besser.
pw-capitalization-doesnt-help-very-much = Großschreibung hilft nicht viel.
pw-all-uppercase-is-almost-as-easy-to-guess-as-all-lowercase = Nur Großbuchstaben sind fast so leicht zu erraten wie nur Kleinbuchstaben.
pw-reversed-words-arent-much-harder-to-guess = Rückwärts geschriebene Wörter sind kaum schwerer zu erraten.
pw-predictable-substitutions-dont-help-very-much = Vorhersehbare Ersetzungen wie „@“ statt „a“ helfen nicht viel.
pw-use-a-longer-keyboard-pattern-with-more-turns = Verwenden Sie ein längeres Tastaturmuster mit mehr Richtungswechseln.
pw-avoid-repeated-words-and-characters = Vermeiden Sie wiederholte Wörter und Zeichen.
pw-avoid-sequences = Vermeiden Sie Folgen.
pw-avoid-recent-years = Vermeiden Sie Jahreszahlen der letzten Zeit.
pw-avoid-years-that-are-associated-with-you = Vermeiden Sie Jahreszahlen, die mit Ihnen zu tun haben.
pw-avoid-dates-and-years-that-are-associated-with-you = Vermeiden Sie Daten und Jahreszahlen, die mit Ihnen zu tun haben.
error-too-many-pushes = { $minutes ->
    [one] Es wurden zu viele Anmeldeanfragen an Ihr Telefon gesendet. Versuchen Sie es in { $minutes } Minute erneut oder wählen Sie eine andere Methode.
   *[other] Es wurden zu viele Anmeldeanfragen an Ihr Telefon gesendet. Versuchen Sie es in { $minutes } Minuten erneut oder wählen Sie eine andere Methode.
}
error-push-request-ended = Diese Anmeldeanfrage ist beendet: Sie wurde schon beantwortet oder ist abgelaufen.
error-device-not-recognised = Dieses Telefon ist nicht für Anmeldefreigaben eingerichtet, oder seine Anfrage war nicht von ihm signiert.
error-wrong-number = Das war nicht die Zahl auf der Anmeldeseite. Wir haben die Anmeldung beendet; starten Sie sie neu, wenn Sie es waren.
