# Words every page shares: fields, buttons, dates, lists, errors.

## Dates (UTC)
date = { $day } { $month } { $year }
date-time = { $date }, { $time } UTC
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December
added-on = added { $date }
last-used-on = last used { $date }
since = since { $date }

## Lists in a sentence
list-and = { $first } and { $last }
list-or = { $first } or { $last }

## Devices and places
device-unknown = Unknown browser
device-command-line = the command line
device-on = { $browser } on { $os }
place-unknown = an unknown address

## Fields and buttons
field-email = Email
field-password = Password
field-confirm-password = Confirm password
field-current-password = Current password
field-new-password = New password
field-confirm-new-password = Confirm new password
field-code = Code
field-recovery-code = Recovery code
continue = Continue
not-now = Not now
not-now-continue = Not now, continue
save = Save
search = Search
filter = Filter
rename = Rename
remove-named = Remove { $name }
copy = Copy
copied = Copied
copy-failed = Copy failed: select the codes and copy them
download = Download
verify = Verify
sign-out = Sign out
back-to-account = Back to your account
back-to-security = Back to security
back-to-sign-in = Back to sign in
col-when = When
col-what = What
col-from = From
col-user = User
col-status = Status
col-actions = Actions
col-event = Event
col-application = Application
col-detail = Detail

## Page titles of errors, by status
status-400 = Bad request
status-401 = Not signed in
status-403 = Not allowed
status-404 = Not found
status-409 = Conflict
status-413 = Too large
status-415 = Wrong kind of request
status-422 = Please check the form
status-429 = Too many requests
status-500 = Something went wrong
status-501 = Not available
status-503 = Unavailable for a moment
status-other = Error
error-start-page = Go to the start page

## Errors
error-busy = Many people are signing in right now. Try again in a moment.
error-database-unavailable = Portcullis cannot reach its database right now. Try again in a moment.
error-internal = Something went wrong on our side. Try again in a moment.
error-unsupported-media-type = Send this form as application/x-www-form-urlencoded.
error-payload-too-large = The request is too large.
error-too-many-requests = Too many requests. Wait { $seconds } seconds and try again.
error-page-not-found = This page does not exist.
error-sign-in-required = Sign in to see this page.
error-form-malformed = The form is incomplete or malformed: { $detail }
error-request-nul = The request is malformed: a value contains a NUL character.
error-csrf-other-site = This form was sent from another site, so it was refused.
error-csrf-no-cookie = Your browser did not send our security cookie. Allow cookies for this site, reload the page and try again.
error-csrf-expired = This form has expired or was not sent by this site. Reload the page and try again.
error-oauth-refused = The application's request was refused: { $detail }.
error-invalid-email = Enter a valid email address, like name@example.com.
error-password-too-short = Use at least { $count } characters.
error-password-too-long = Use at most { $count } characters.
error-password-too-weak = This password is too easy to guess. { $detail }
error-password-breached = This password has appeared in a data breach, so attackers try it first. Choose another one.
error-password-mismatch = The passwords do not match.
error-invalid-credentials = Incorrect email or password.
error-wrong-current-password = Your current password is incorrect.
error-invalid-password = That password is incorrect.
error-locked = { $minutes ->
    [one] Too many failed attempts. Try again in { $minutes } minute.
   *[other] Too many failed attempts. Try again in { $minutes } minutes.
}
error-email-not-verified = Confirm your email address first: we have sent you a new link.
error-invalid-link = This link is invalid or has expired. Request a new one.
error-setup-link-unusable = This setup link has expired or was used, or an administrator exists already. While there is no administrator, each start of the server logs a new link; an operator can also run: portcullis user create --admin
error-email-in-use = An account with this address exists already, and someone else may have made it: choose another address. (To use this one, delete that account on the command line first: portcullis user delete --email EMAIL)
error-invalid-code = That code is not right, or it was already used. Check your app and try again.
error-key-not-accepted = Your security key or passkey was not accepted. Try again, or use another method.
error-cloned-authenticator = Your security key "{ $name }" reported a use count lower than before, which can mean it was copied. We have disabled it: sign in another way, then check your security page.
error-webauthn-unavailable = Security keys and passkeys are not available on this server.
error-phishing-resistant-needed = This application requires a security key or passkey. Add one on your security page, then try again.
error-invalid-phone = Enter the number in international form with its country code, like +44 7700 900123.
error-sms-delivery = We could not send the text message. Try again later, or use another method.
error-code-sent-recently = We sent you a code moments ago. Wait { $seconds } seconds before asking for another.
error-too-many-codes = { $minutes ->
    [one] Too many codes were sent. Try again in { $minutes } minute, or use another method.
   *[other] Too many codes were sent. Try again in { $minutes } minutes, or use another method.
}
error-reauthentication-required = For your security, sign in again to change how you sign in.
error-second-factor-needed = For your security, confirm your second factor to change how you sign in.
error-sign-in-expired = This sign-in has expired. Please sign in again.
error-step-not-allowed = This step is not part of your sign-in. Start again from the sign-in page.
error-too-many-answers = Too many wrong answers for this sign-in. Sign in again to get a new one.
error-no-usable-factor = None of your sign-in methods can be used here, and none can be set up. Contact your administrator.
error-recovery-codes-need-a-factor = Set up two-step verification first: recovery codes stand in for a second factor.
error-last-factor = You cannot remove your last sign-in method while two-step verification is required for your account. Add another one first.
error-invalid-input = { $detail }
error-factor-required-by-application = This application accepts only { $methods } as a second step. Add one on your security page, then try again.
error-account-disabled = This account is disabled. Contact your administrator.
error-sign-in-denied = Signing in from here is not allowed by your organisation's security policy. Contact your administrator.
error-not-found = Not found.
error-invalid-name = Enter a name of 1 to 64 characters.
error-email-delivery = We could not send the email. Try again later.
error-unknown-language = That language is not available.

## Password advice (zxcvbn)
pw-straight-rows-of-keys-are-easy-to-guess = Straight rows of keys are easy to guess.
pw-short-keyboard-patterns-are-easy-to-guess = Short keyboard patterns are easy to guess.
pw-repeats-like-aaa-are-easy-to-guess = Repeats like "aaa" are easy to guess.
pw-repeats-like-abc-abc-are-only-slightly-harder-to-guess = Repeats like "abcabcabc" are only slightly harder to guess than "abc".
pw-this-is-a-top-10-password = This is a top-10 common password.
pw-this-is-a-top-100-password = This is a top-100 common password.
pw-this-is-a-common-password = This is a very common password.
pw-this-is-similar-to-a-commonly-used-password = This is similar to a commonly used password.
pw-sequences-like-abc-are-easy-to-guess = Sequences like abc or 6543 are easy to guess.
pw-recent-years-are-easy-to-guess = Recent years are easy to guess.
pw-a-word-by-itself-is-easy-to-guess = A word by itself is easy to guess.
pw-dates-are-often-easy-to-guess = Dates are often easy to guess.
pw-names-and-surnames-by-themselves-are-easy-to-guess = Names and surnames by themselves are easy to guess.
pw-common-names-and-surnames-are-easy-to-guess = Common names and surnames are easy to guess.
pw-use-a-few-words-avoid-common-phrases = Use a few words, avoid common phrases.
pw-no-need-for-symbols-digits-or-uppercase-letters = No need for symbols, digits, or uppercase letters.
pw-add-another-word-or-two = Add another word or two. Uncommon words are better.
pw-capitalization-doesnt-help-very-much = Capitalization doesn't help very much.
pw-all-uppercase-is-almost-as-easy-to-guess-as-all-lowercase = All-uppercase is almost as easy to guess as all-lowercase.
pw-reversed-words-arent-much-harder-to-guess = Reversed words aren't much harder to guess.
pw-predictable-substitutions-dont-help-very-much = Predictable substitutions like '@' instead of 'a' don't help very much.
pw-use-a-longer-keyboard-pattern-with-more-turns = Use a longer keyboard pattern with more turns.
pw-avoid-repeated-words-and-characters = Avoid repeated words and characters.
pw-avoid-sequences = Avoid sequences.
pw-avoid-recent-years = Avoid recent years.
pw-avoid-years-that-are-associated-with-you = Avoid years that are associated with you.
pw-avoid-dates-and-years-that-are-associated-with-you = Avoid dates and years that are associated with you.
error-too-many-pushes = { $minutes ->
    [one] Too many sign-in requests were sent to your phone. Try again in { $minutes } minute, or use another method.
   *[other] Too many sign-in requests were sent to your phone. Try again in { $minutes } minutes, or use another method.
}
error-push-request-ended = This sign-in request has ended: it was answered already, or it expired.
error-device-not-recognised = This phone is not set up for sign-in approvals, or its request was not signed by it.
error-wrong-number = That was not the number on the sign-in page. We stopped the sign-in; start it again if it was you.
