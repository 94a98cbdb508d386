# The account page, the security page, the suggestion to set up a factor.

## Account page
account-title = Your account
account-breached = Your password has appeared in a data breach, so attackers try it first. Choose a new one below.
account-signed-in-as = Signed in as
account-verified-with = This session was verified with { $methods }.
account-security-link = Security: sign-in methods, sessions, recent events
admin-console = Admin console
invite-heading = Protect your account.
invite-text = Add an authenticator app or a passkey, so that your password alone is not enough to sign in.
invite-button = Set up two-step verification
language-heading = Language
language-label = Show pages and emails in
language-automatic = Your browser's language
password-change-heading = Change password
notice-password-changed = Your password has been changed. Other sessions were signed out.
sessions-heading = Sessions
sign-out-everywhere = Sign out everywhere

## Suggestion after a sign-in with the password alone
protect-title = Protect your account
protect-text = You signed in with your password alone. Add an authenticator app or a passkey: then someone who learns your password still cannot sign in.
protect-now = Set it up now
protect-later-help = "Not now" will not ask again for 30 days.

## Security page
security-title = Security
mfa-off = Two-step verification is off.
mfa-off-required = Two-step verification is off, but your account requires it: set it up now.
factor-disabled = Disabled: it reported a use count lower than before, which can mean it was copied. Remove it and register it again if you still trust it.
factor-new-name = New name for { $name }
kind-totp = Authenticator app
kind-phone = Phone number
kind-security_key = Security key
kind-passkey = Passkey
recovery-codes-heading = Recovery codes
recovery-codes-none = You have no recovery codes: if you lose your second factor, you cannot sign in. Generate them now and keep them safe.
recovery-codes-left = { $count ->
    [one] { $count } code left
   *[other] { $count } codes left
}
recovery-codes-generate = Generate new recovery codes
browsers-heading = Remembered browsers
browser-since-until = since { $since }, until { $until }
browser-forget = Forget this browser
browsers-none = No browser skips two-step verification.
session-started = signed in { $date }
session-last-seen = last seen { $date }
this-session = This session
session-end = Sign out this session
apps-heading = Applications with access
app-can-see = can see { $scopes }
app-stays-signed-in = stays signed in
app-remove = Remove access for { $name }
apps-none = No application has access to your account.
events-heading = Recent security events
events-none = No security events yet.

## Notices after a change
notice-totp-added = Authenticator app added.
notice-passkey-added = Passkey created.
notice-security-key-added = Security key added.
notice-phone-added = Phone number added.
notice-recovery-codes-new = New recovery codes: the old ones no longer work.
notice-renamed = Renamed.
notice-removed = Removed.
notice-browser-forgotten = That browser will be asked for a second factor again.
notice-session-ended = That session was signed out.
notice-app-access-removed = That application's access was removed: its tokens no longer work with this account.

## Security events, in words
event-sign-in-succeeded = Signed in
event-sign-in-failed = Failed sign-in attempt
event-sign-in-denied = Sign-in refused by policy
event-sign-in-step-refused = A sign-in step was refused
event-account-locked = Account locked
event-account-unlocked = Account unlocked
event-policy-decision = Sign-in policy applied
event-factor-added = Sign-in method added
event-factor-removed = Sign-in method removed
event-factor-renamed = Sign-in method renamed
event-authenticator-cloned = Security key disabled (possibly copied)
event-recovery-code-used = Recovery code used
event-recovery-codes-regenerated = New recovery codes generated
event-remembered-browser-created = Browser remembered
event-remembered-browser-revoked = Remembered browser forgotten
event-session-revoked = Session signed out
event-password-changed = Password changed
event-mfa-reset = Sign-in methods reset by an administrator
event-mfa-requirement-changed = Two-step requirement changed by an administrator
event-admin-changed = Administrator role changed
event-auditor-changed = Auditor role changed
event-console-change-refused = A change in the admin console was refused (read-only auditor)
event-user-created = Account created
event-user-deleted = Account deleted
event-app-access-removed = An application's access was removed
event-other = Other change

## Sign-in approvals on a phone (push)
kind-push_device = Phone for sign-in approvals
push-set-up = Set up sign-in approvals on your phone
push-default-name = My phone
push-setup-title = Set up sign-in approvals
push-setup-scan = Scan this code with your phone's camera.
push-setup-qr-label = QR code that opens the Portcullis app on your phone
push-setup-or-open = Or open this link on your phone:
push-setup-link = Open the Portcullis app
push-setup-on-phone = On your phone, name it and tap "Pair this phone". Allow notifications to hear of sign-ins at once.
push-setup-expiry = The link works once, for { $minutes } minutes.
push-setup-done = I have set up my phone
event-push-denied = Sign-in denied on your phone
companion-title = Portcullis authenticator
companion-needs-javascript = This app needs JavaScript.
companion-pair-intro = Pair this phone with your account: it will then approve your sign-ins.
companion-device-name = Name of this phone
companion-pair-button = Pair this phone
companion-not-paired = This phone is not set up yet. On your computer, open your security page and choose "Set up sign-in approvals on your phone".
companion-paired-as = This phone is set up as
companion-no-push = Notifications are off: when you sign in, open this app and the request appears here.
companion-requests = Sign-in requests
companion-no-requests = No sign-in is waiting for you.
companion-pick-number = Someone is signing in. If it is you, tap the number the sign-in page shows:
companion-deny = Deny: this wasn't me
companion-approve-with = Approve with { $number }
companion-approved = Approved. Go back to the sign-in page: it continues there.
companion-denied = Denied. We stopped the sign-in and emailed you about it. If you did not try to sign in, change your password.
companion-paired = This phone is set up. Sign-in requests appear here.
companion-replaces = This phone is already set up as "{ $name }". Pairing it again replaces that: it will then approve sign-ins only for the account of this link.
companion-pair-failed = This phone could not be paired. Ask for a new link on your security page.
companion-not-recognised = This phone is no longer set up for your account (it was removed, or your sign-in methods were reset). Pair it again from your security page.
companion-unsupported = This browser cannot keep a key safely (it needs WebCrypto and IndexedDB). Use a current browser.
companion-failed = Something went wrong. Try again.
companion-notification-title = Sign-in request
companion-notification-body = Someone is signing in to your account. Tap to review.
