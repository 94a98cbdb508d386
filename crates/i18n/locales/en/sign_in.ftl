# Signing in, signing up, resetting a password, the second step, setting up a factor.

## Sign-in page
sign-in-title = Sign in
sign-in-button = Sign in
sign-in-passkey = Sign in with a passkey
sign-in-email-code-link = Email me a sign-in code
sign-in-email-code-rest = instead of using my password.
sign-in-forgot = Forgot your password?
notice-reauth-admin = For your security, sign in again to make changes in the admin console.
notice-reauth-application = The application asks you to sign in again.

## Sign-in by emailed code
login-code-title = Sign in with an emailed code
login-code-intro = We will email you a 6-digit code that signs you in without your password.
login-code-send = Email me a sign-in code
login-code-password-instead = Sign in with your password instead
send-another-code = Send another code
notice-email-code-sent = If an account uses { $email }, we have emailed it a sign-in code. It works for { $minutes } minutes.

## Sign-up, confirmation, reset
sign-up-title = Create an account
sign-up-name = Name (optional)
sign-up-password-help = At least 8 characters. A few unusual words make a strong password.
sign-up-button = Create account
sign-up-have-account = Already have an account?
first-admin-title = Create the first administrator
first-admin-intro = No administrator exists yet. This page creates one; its link works once, within an hour of the server's start.
first-admin-next = Next you set up a second factor: the admin console opens once you have one.
first-admin-button = Create administrator
check-email-title = Check your email
notice-sign-up-sent = We have sent a message to { $email }. Open the link in it to confirm your address, then sign in.
verify-email-title = Confirm your email address
verify-email-button = Confirm email address
email-confirmed-title = Email address confirmed
notice-email-confirmed = Your address is confirmed. You can sign in now.
forgot-title = Reset your password
forgot-intro = Enter your email address and we will send you a link to choose a new password.
forgot-button = Send reset link
notice-reset-sent = If { $email } has an account, we have sent it a link to choose a new password. The link expires in one hour.
reset-title = Choose a new password
reset-button = Set new password
password-changed-title = Password changed
notice-password-reset-done = Your password has been changed and you were signed out everywhere. Sign in with your new password.

## Second step
second-step-title = Two-step verification
second-step-noscript = Security keys need JavaScript. Turn it on, or try another method.
remember-browser = Remember this browser
remember-browser-help = { $count ->
    [one] Skip this step on this browser for { $count } day. Only on a device you alone use.
   *[other] Skip this step on this browser for { $count } days. Only on a device you alone use.
}
try-another-method = Try another method
methods-title = Choose how to verify
methods-enroll = Set up a new way to verify
error-unknown-method = Unknown sign-in method.
error-method-sends-no-code = This method sends no code.

## The steps (one set of words per way to verify)
step-password-words = your password
step-password-offer = Enter your password
step-password-prompt = A code we emailed you is one kind of proof; your password is the other. Enter the password of { $email }.
step-webauthn-words = a security key or passkey
step-webauthn-offer = Use a security key or passkey
step-webauthn-prompt = Use your security key or passkey for { $email }.
step-totp-words = an authenticator app
step-totp-offer = Use your authenticator app
step-totp-prompt = Open your authenticator app and enter the 6-digit code for { $email }.
step-sms-words = a code by text message
step-sms-offer = Text me a code
step-sms-prompt = Enter the 6-digit code we texted to your phone.
step-sms-send-offer = We can text a 6-digit code to your phone.
step-sms-send-button = Text me a code
step-sms-sent = We texted a code to { $to }. It works for { $minutes } minutes.
step-sms-default-to = your phone
step-sms-choice = Phone
step-sms-caution = Text messages are less secure than an authenticator app or a security key.
step-email-words = a code by email
step-email-offer = Email me a code
step-email-prompt = Enter the 6-digit code we emailed to { $email }.
step-email-send-offer = We can email a 6-digit code to { $email }.
step-email-send-button = Email me a code
step-email-sent = We sent a code to { $to }. It works for { $minutes } minutes.
step-email-default-to = { $email }
step-email-choice = Address
step-recovery-words = a recovery code
step-recovery-offer = Use a recovery code
step-recovery-prompt = Enter one of the recovery codes you saved when you set up two-step verification. Each code works once.

## How a session was verified (account page)
method-password = your password
method-passkey = a passkey
method-security_key = a security key
method-totp = your authenticator app
method-sms_otp = a code by text message
method-email_otp = a code by email
method-recovery_code = a recovery code
method-remembered-browser = a browser you asked us to remember

## Setting up a factor (security page and during a sign-in)
enroll-title = Set up two-step verification
enroll-intro = Your sign-in needs two-step verification. Set up a way to verify to finish signing in.
enroll-choose = Choose one for { $email }. You can add more later on your security page.
enroll-verify-another-way = Verify another way
totp-title = Set up an authenticator app
totp-help = Google Authenticator, Microsoft Authenticator, 1Password or a similar app shows a new code every 30 seconds.
totp-set-up = Set up authenticator app
totp-scan = Scan this code with Google Authenticator, Microsoft Authenticator, 1Password or a similar app.
totp-qr-label = QR code for your authenticator app
totp-type-key = Or type this key into the app:
totp-enter-code = Enter the 6-digit code the app shows.
totp-default-name = Authenticator app
device-name = Device name
passkey-name = Passkey name
passkey-default-name = My passkey
passkey-create = Create a passkey
passkey-help = Signs you in without a password, unlocked with your fingerprint, face or PIN.
security-key-name = Security key name
security-key-default-name = My security key
security-key-add = Add a security key
security-key-help = A hardware key you plug in or tap, used after your password.
phone-help = Codes by text message. Less secure than an app or a security key: a number can be taken over.
phone-number = Phone number
phone-add = Add a phone number
phone-confirm-title = Confirm your phone number
phone-confirm-intro = We texted a 6-digit code to { $phone }. Enter it to add this number.
keys-need-javascript = Security keys and passkeys need JavaScript.
error-choose-key-kind = Choose a security key or a passkey.
recovery-title = Your recovery codes
recovery-heading = Save your recovery codes
recovery-intro = If you lose your phone, each of these codes lets you sign in once. Keep them somewhere safe: they are shown only now.
notice-mfa-on = Two-step verification is on.

## What the browser script says (security keys and passkeys)
webauthn-cancelled = The request was cancelled or timed out. Try again, or use another method.
webauthn-already-registered = This security key or passkey is already registered to your account.
webauthn-not-registered = That security key or passkey is not registered here.
webauthn-security-error = Your browser refused: this page's address cannot use security keys.
webauthn-not-supported = Your authenticator does not support what this site needs.
webauthn-failed = Something went wrong. Try again.
webauthn-bad-answer = The server did not answer as expected. Reload the page and try again.
webauthn-refused = The server refused the request.
webauthn-unsupported-browser = This browser does not support security keys or passkeys. Use another method or another browser.
webauthn-prompt-create = Follow your browser's prompt to create it…
webauthn-prompt-get = Follow your browser's prompt…
webauthn-no-credential = No credential was returned.

## Applications
form-post-title = Returning to the application
form-post-heading = Returning to the application…
form-post-noscript = JavaScript is off: press the button to continue.
end-session-heading = Sign out?
end-session-intro = An application asked to sign you out of Portcullis.
end-session-stay = Stay signed in
signed-out-title = Signed out
notice-signed-out = You are signed out.
consent-title = Allow { $client }?
consent-wants = { $client } wants to sign you in.
consent-wants-more = { $client } wants to sign you in and get { $what }.
consent-self-registered = This application registered itself; your administrator did not add it.
consent-answer-goes-to = Your answer goes to
consent-client = client
consent-trust = Allow it only if you trust it. You can remove its access later on your security page.
consent-allow = Allow
consent-deny = Deny
consent-to-web-site = the web site { $site }
consent-to-app = an application on your device ({ $scheme })
scope-email = your email address
scope-profile = your name
consent-offline = It also asks to stay signed in while you are away.
error-authorization-expired = This sign-in request has expired. Go back to the application and start again.
error-consent-needed = This application needs your permission first: open it and sign in again.
error-choose-allow-or-deny = Choose Allow or Deny.

## Approval on a phone (push)
step-push-words = approval on your phone
step-push-offer = Send a sign-in request to your phone
step-push-prompt = We will send a sign-in request for { $email } to your phone. In the Portcullis app there, tap the number this page shows.
method-push = approval on your phone
push-tap-number = On your phone, tap this number:
push-open-app = Nothing on your phone? Open the Portcullis app on your phone: the request is waiting there.
push-denied-here = The sign-in was denied on your phone, so it has stopped. If it was you after all, sign in again.
push-wrong-number-here = Another number was tapped on your phone, so the sign-in has stopped. Sign in again to get a new number.
push-expired-here = The request has expired. Send a new one, or use another method.
push-failed-here = The request could not be sent. Try again, or use another method.
