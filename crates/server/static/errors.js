// A refused form: focus goes to the first field marked invalid, so a screen
// reader reads the field and its error (aria-describedby) at once (WCAG 3.3.1).
document.addEventListener("DOMContentLoaded", function () {
  var invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
});
