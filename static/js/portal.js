/* Small progressive enhancements. No inline scripts anywhere (CSP: script-src 'self'). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // Forms marked data-once disable their submit buttons after the first submit: a double click
  // sends one request (the server's one-time request token is what really guarantees it).
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      if (form.dataset.submitted) { return; }
      form.dataset.submitted = "1";
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
      }, 0);
    });
  });
  // Pages marked data-refresh-seconds reload themselves (e.g. while an outcome is unknown).
  var refresh = document.body.getAttribute("data-refresh-seconds");
  // A half-typed code (the next customer's scan) is never thrown away: the reload waits.
  if (refresh) {
    var reload = function () {
      var code = document.querySelector("[data-code-input]");
      if (code && code.value) { window.setTimeout(reload, 1000); return; }
      window.location.reload();
    };
    window.setTimeout(reload, parseInt(refresh, 10) * 1000);
  }
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
