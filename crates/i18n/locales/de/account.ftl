# Die Kontoseite, die Sicherheitsseite, der Vorschlag, einen Faktor einzurichten.

## Kontoseite
account-title = Ihr Konto
account-breached = Ihr Passwort ist bei einem Datenleck bekannt geworden, deshalb probieren Angreifer es zuerst. Wählen Sie unten ein neues.
account-signed-in-as = Angemeldet als
account-verified-with = Diese Sitzung wurde mit { $methods } bestätigt.
account-security-link = Sicherheit: Anmeldemethoden, Sitzungen, letzte Ereignisse
admin-console = Administration
invite-heading = Schützen Sie Ihr Konto.
invite-text = Fügen Sie eine Authenticator-App oder einen Passkey hinzu, damit Ihr Passwort allein zum Anmelden nicht reicht.
invite-button = Bestätigung in zwei Schritten einrichten
language-heading = Sprache
language-label = Seiten und E-Mails anzeigen auf
language-automatic = Sprache Ihres Browsers
password-change-heading = Passwort ändern
notice-password-changed = Ihr Passwort wurde geändert. Andere Sitzungen wurden abgemeldet.
sessions-heading = Sitzungen
sign-out-everywhere = Überall abmelden

## Vorschlag nach einer Anmeldung nur mit Passwort
protect-title = Schützen Sie Ihr Konto
protect-text = Sie haben sich nur mit Ihrem Passwort angemeldet. Fügen Sie eine Authenticator-App oder einen Passkey hinzu: Dann kann sich auch jemand, der Ihr Passwort kennt, nicht anmelden.
protect-now = Jetzt einrichten
protect-later-help = Nach „Jetzt nicht“ fragen wir 30 Tage lang nicht mehr.

## Sicherheitsseite
security-title = Sicherheit
mfa-off = Die Bestätigung in zwei Schritten ist ausgeschaltet.
mfa-off-required = Die Bestätigung in zwei Schritten ist ausgeschaltet, aber Ihr Konto verlangt sie: Richten Sie sie jetzt ein.
factor-disabled = Deaktiviert: Er meldete einen niedrigeren Nutzungszähler als zuvor, was bedeuten kann, dass er kopiert wurde. Entfernen Sie ihn und registrieren Sie ihn erneut, wenn Sie ihm noch vertrauen.
factor-new-name = Neuer Name für { $name }
kind-totp = Authenticator-App
kind-phone = Telefonnummer
kind-security_key = Sicherheitsschlüssel
kind-passkey = Passkey
recovery-codes-heading = Wiederherstellungscodes
recovery-codes-none = Sie haben keine Wiederherstellungscodes: Verlieren Sie Ihren zweiten Faktor, können Sie sich nicht mehr anmelden. Erzeugen Sie jetzt welche und bewahren Sie sie sicher auf.
recovery-codes-left = { $count ->
    [one] { $count } Code übrig
   *[other] { $count } Codes übrig
}
recovery-codes-generate = Neue Wiederherstellungscodes erzeugen
browsers-heading = Gemerkte Browser
browser-since-until = seit { $since }, bis { $until }
browser-forget = Diesen Browser vergessen
browsers-none = Kein Browser überspringt die Bestätigung in zwei Schritten.
session-started = angemeldet am { $date }
session-last-seen = zuletzt gesehen am { $date }
this-session = Diese Sitzung
session-end = Diese Sitzung abmelden
apps-heading = Anwendungen mit Zugriff
app-can-see = sieht { $scopes }
app-stays-signed-in = bleibt angemeldet
app-remove = Zugriff von { $name } entfernen
apps-none = Keine Anwendung hat Zugriff auf Ihr Konto.
events-heading = Letzte Sicherheitsereignisse
events-none = Noch keine Sicherheitsereignisse.

## Hinweise nach einer Änderung
notice-totp-added = Authenticator-App hinzugefügt.
notice-passkey-added = Passkey erstellt.
notice-security-key-added = Sicherheitsschlüssel hinzugefügt.
notice-phone-added = Telefonnummer hinzugefügt.
notice-recovery-codes-new = Neue Wiederherstellungscodes: Die alten funktionieren nicht mehr.
notice-renamed = Umbenannt.
notice-removed = Entfernt.
notice-browser-forgotten = Dieser Browser wird wieder nach einem zweiten Faktor gefragt.
notice-session-ended = Diese Sitzung wurde abgemeldet.
notice-app-access-removed = Der Zugriff dieser Anwendung wurde entfernt: Ihre Tokens funktionieren mit diesem Konto nicht mehr.

## Sicherheitsereignisse in Worten
event-sign-in-succeeded = Angemeldet
event-sign-in-failed = Fehlgeschlagener Anmeldeversuch
event-sign-in-denied = Anmeldung durch Richtlinie abgelehnt
event-sign-in-step-refused = Ein Anmeldeschritt wurde abgelehnt
event-account-locked = Konto gesperrt
event-account-unlocked = Konto entsperrt
event-policy-decision = Anmelderichtlinie angewendet
event-factor-added = Anmeldemethode hinzugefügt
event-factor-removed = Anmeldemethode entfernt
event-factor-renamed = Anmeldemethode umbenannt
event-authenticator-cloned = Sicherheitsschlüssel deaktiviert (möglicherweise kopiert)
event-recovery-code-used = Wiederherstellungscode verwendet
event-recovery-codes-regenerated = Neue Wiederherstellungscodes erzeugt
event-remembered-browser-created = Browser gemerkt
event-remembered-browser-revoked = Gemerkten Browser vergessen
event-session-revoked = Sitzung abgemeldet
event-password-changed = Passwort geändert
event-mfa-reset = Anmeldemethoden von der Administration zurückgesetzt
event-mfa-requirement-changed = Pflicht zur Bestätigung in zwei Schritten von der Administration geändert
event-admin-changed = Administrationsrolle geändert
event-auditor-changed = Prüferrolle geändert
event-console-change-refused = Eine Änderung in der Administration wurde abgelehnt (Prüfer, nur lesend)
event-user-created = Konto erstellt
event-user-deleted = Konto gelöscht
event-app-access-removed = Der Zugriff einer Anwendung wurde entfernt
event-other = Andere Änderung

## Anmeldefreigaben auf dem Telefon (Push)
kind-push_device = Telefon für Anmeldefreigaben
push-set-up = Anmeldefreigaben auf dem Telefon einrichten
push-default-name = Mein Telefon
push-setup-title = Anmeldefreigaben einrichten
push-setup-scan = Scannen Sie diesen Code mit der Kamera Ihres Telefons.
push-setup-qr-label = QR-Code, der die Portcullis-App auf Ihrem Telefon öffnet
push-setup-or-open = Oder öffnen Sie diesen Link auf Ihrem Telefon:
push-setup-link = Portcullis-App öffnen
push-setup-on-phone = Geben Sie dem Telefon dort einen Namen und tippen Sie auf „Dieses Telefon koppeln“. Erlauben Sie Mitteilungen, um sofort von Anmeldungen zu erfahren.
push-setup-expiry = Der Link funktioniert einmal, { $minutes } Minuten lang.
push-setup-done = Ich habe mein Telefon eingerichtet
event-push-denied = Anmeldung auf Ihrem Telefon abgelehnt
companion-title = Portcullis-Authenticator
companion-needs-javascript = Diese App benötigt JavaScript.
companion-pair-intro = Koppeln Sie dieses Telefon mit Ihrem Konto: Danach gibt es Ihre Anmeldungen frei.
companion-device-name = Name dieses Telefons
companion-pair-button = Dieses Telefon koppeln
companion-not-paired = Dieses Telefon ist noch nicht eingerichtet. Öffnen Sie auf Ihrem Computer die Sicherheitsseite und wählen Sie „Anmeldefreigaben auf dem Telefon einrichten“.
companion-paired-as = Dieses Telefon ist eingerichtet als
companion-no-push = Mitteilungen sind aus: Öffnen Sie bei einer Anmeldung diese App, dann erscheint die Anfrage hier.
companion-requests = Anmeldeanfragen
companion-no-requests = Keine Anmeldung wartet auf Sie.
companion-pick-number = Jemand meldet sich an. Wenn Sie es sind, tippen Sie auf die Zahl, die die Anmeldeseite zeigt:
companion-deny = Ablehnen: Das war ich nicht
companion-approve-with = Mit { $number } freigeben
companion-approved = Freigegeben. Kehren Sie zur Anmeldeseite zurück: Dort geht es weiter.
companion-denied = Abgelehnt. Wir haben die Anmeldung beendet und Ihnen eine E-Mail geschickt. Wenn Sie sich nicht anmelden wollten, ändern Sie Ihr Passwort.
companion-paired = Dieses Telefon ist eingerichtet. Anmeldeanfragen erscheinen hier.
companion-replaces = Dieses Telefon ist schon als „{ $name }“ eingerichtet. Erneutes Koppeln ersetzt das: Danach gibt es nur noch Anmeldungen für das Konto dieses Links frei.
companion-pair-failed = Dieses Telefon konnte nicht gekoppelt werden. Fordern Sie auf Ihrer Sicherheitsseite einen neuen Link an.
companion-not-recognised = Dieses Telefon ist für Ihr Konto nicht mehr eingerichtet (es wurde entfernt oder Ihre Anmeldemethoden wurden zurückgesetzt). Koppeln Sie es erneut über Ihre Sicherheitsseite.
companion-unsupported = Dieser Browser kann einen Schlüssel nicht sicher aufbewahren (er braucht WebCrypto und IndexedDB). Verwenden Sie einen aktuellen Browser.
companion-failed = Etwas ist schiefgegangen. Versuchen Sie es erneut.
companion-notification-title = Anmeldeanfrage
companion-notification-body = Jemand meldet sich bei Ihrem Konto an. Tippen Sie, um es zu prüfen.
