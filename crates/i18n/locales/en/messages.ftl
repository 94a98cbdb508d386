# Emails and text messages. $product is the product's name, $site the server's host.
mail-footer = This message was sent by { $product } at { $site }.
mail-or-open-link = Or open this link:
mail-sign-in = Sign in
mail-reset-password = Reset your password
mail-review-security = Review your sessions and sign-in methods
mail-turn-on-mfa = Turn on two-step verification
mail-browser = Browser
mail-address = Address
mail-if-not-you-reset = If this was not you, reset your password now:
mail-if-not-you-review = If this was not you, change your password and review your sign-in methods:
mail-if-unexpected-review = If you did not expect this, change your password and review your sign-in methods:
mail-if-not-you-reset-and-review = If this was not you, reset your password now and review your sign-in methods:

mail-verify-email-subject = { $product }: confirm your email address
mail-verify-email-intro = Confirm your email address to finish setting up your { $product } account.
mail-verify-email-button = Confirm my address
mail-verify-email-expiry = { $hours ->
    [one] The link works once and expires in { $hours } hour. If you did not sign up, ignore this message.
   *[other] The link works once and expires in { $hours } hours. If you did not sign up, ignore this message.
}

mail-sign-up-attempt-subject = { $product }: sign-up attempt with your address
mail-sign-up-attempt-intro = Someone, perhaps you, tried to create a { $product } account with this address, which already has one.
mail-sign-up-attempt-if-you = If it was you, sign in or reset your password:
mail-sign-up-attempt-if-not-you = If it was not you, you can ignore this message.

mail-password-reset-subject = { $product }: reset your password
mail-password-reset-intro = Someone asked to reset the password of your { $product } account.
mail-password-reset-open = To choose a new password, open:
mail-password-reset-button = Choose a new password
mail-password-reset-expiry = The link works once and expires in { $minutes } minutes. If you did not ask, ignore this message: your password stays as it is.

mail-password-changed-subject = { $product }: your password was changed
mail-password-changed-intro = The password of your { $product } account was just changed and other sessions were signed out.

mail-sign-in-code-subject = { $product }: your sign-in code is { $code }
mail-sign-in-code-intro = Your { $product } sign-in code for { $site } is { $code }
mail-sign-in-code-lead = Your sign-in code for { $site } is
mail-sign-in-code-expiry = { $minutes ->
    [one] It expires in { $minutes } minute and works once. Never give it to anyone: { $product } will not ask you for it by phone or email.
   *[other] It expires in { $minutes } minutes and works once. Never give it to anyone: { $product } will not ask you for it by phone or email.
}
mail-sign-in-code-not-you = If you did not try to sign in, someone may know your password: change it.

mail-factor-added-subject = { $product }: a sign-in method was added
mail-factor-added-intro = { $kind ->
    [kind-totp] An authenticator app
    [kind-phone] A phone number
    [kind-security_key] A security key
    [kind-passkey] A passkey
    [kind-push_device] A phone for sign-in approvals
   *[other] A sign-in method
} named "{ $name }" was added to your { $product } account.
mail-factor-removed-subject = { $product }: a sign-in method was removed
mail-factor-removed-intro = The sign-in method "{ $name }" was removed from your { $product } account.

mail-authenticator-cloned-subject = { $product }: a security key was disabled
mail-authenticator-cloned-intro = Your security key or passkey "{ $name }" reported a use count lower than before, which can mean someone copied it. We have disabled it.

mail-recovery-code-used-subject = { $product }: a recovery code was used
mail-recovery-code-used-intro = { $count ->
    [one] A recovery code was just used to sign in to your { $product } account. { $count } recovery code remains.
   *[other] A recovery code was just used to sign in to your { $product } account. { $count } recovery codes remain.
}

mail-new-device-subject = { $product }: a sign-in from a new device
mail-new-device-intro = Your { $product } account was just signed in to from a browser it had not used before:
mail-new-device-if-you = If this was you, there is nothing to do.
mail-new-device-if-not-you = If not, change your password now and review your sessions and sign-in methods:

mail-account-locked-subject = { $product }: your account is locked for { $minutes } minutes
mail-account-locked-intro = There were too many failed attempts to sign in to your { $product } account, so it is locked for { $minutes } minutes.
mail-account-locked-if-you = If this was you, wait and try again, or reset your password:
mail-account-locked-if-not-you = If it was not you, someone may be guessing your password: choose a strong one and turn on two-step verification:

sms-sign-in-code = { $code } is your { $product } sign-in code for { $site }. It expires in { $minutes } min. Do not share it.
sms-phone-confirmation-code = { $code } is your { $product } code to confirm this phone number. It expires in { $minutes } min.

mail-push-denied-subject = { $product }: a sign-in was denied on your phone
mail-push-denied-intro = A sign-in to your { $product } account was denied on your phone ("this wasn't me") and stopped. It came from:
mail-push-denied-advice = Whoever it was knew your password: change it now, and review your sign-in methods:
