// "Copy" on the recovery-codes page: copies the codes shown, one per line.
document.querySelectorAll("[data-copy-target]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () {
    var list = document.querySelector(button.getAttribute("data-copy-target"));
    var text = Array.from(list.querySelectorAll("code")).map(function (c) { return c.textContent; }).join("\n");
    navigator.clipboard.writeText(text).then(
      function () { button.textContent = button.dataset.copied; },
      function () { button.textContent = button.dataset.copyFailed; }
    );
  });
});
