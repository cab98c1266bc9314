/* Sales pages: layout-dependent fields, waiting sale pages, the bulk-sale progress bar and rows.
   No inline scripts (CSP); the server validates everything this script hides or shows. */
(function () {
  "use strict";

  // Sell form: offer only the layouts of the chosen template; ask for from/for only with a layout.
  document.querySelectorAll("form[data-layout-form]").forEach(function (form) {
    var template = form.querySelector("select[name=template]");
    var layout = form.querySelector("select[name=layout]");
    var namesBlock = form.querySelector("[data-layout-only]");
    if (!template || !layout || !namesBlock) { return; }
    function syncLayouts() {
      var chosen = template.value;
      Array.prototype.forEach.call(layout.options, function (option) {
        if (!option.value) { return; }
        var allowed = (option.getAttribute("data-templates") || "").split(" ");
        var ok = chosen !== "" && allowed.indexOf(chosen) !== -1;
        option.hidden = !ok;
        option.disabled = !ok;
        if (!ok && option.selected) { layout.value = ""; }
      });
    }
    function syncNames() {
      var show = layout.value !== "";
      namesBlock.hidden = !show;
      if (!show) {
        namesBlock.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
    }
    template.addEventListener("change", function () { syncLayouts(); syncNames(); });
    layout.addEventListener("change", syncNames);
    syncLayouts();
    syncNames();
  });

  // A sale still waiting for the provider's answer: look again in a few seconds.
  if (document.querySelector("[data-sale-state=pending]")) {
    window.setTimeout(function () { window.location.reload(); }, 3000);
  }

  // Bulk sale: poll the small JSON endpoint, move the bar and the rows' results; reload at the end.
  var box = document.querySelector("[data-bulk-progress]");
  if (box) {
    var fill = box.querySelector("[data-progress-fill]");
    var bar = box.querySelector("[data-progress-bar]");
    function setText(selector, value) {
      var el = box.querySelector(selector);
      if (el) { el.textContent = value; }
    }
    function show(percent) {
      if (fill) { fill.style.width = percent + "%"; }
      if (bar) { bar.setAttribute("aria-valuenow", percent); }
      setText("[data-progress-percent]", percent);
    }
    if (fill) { show(parseInt(fill.getAttribute("data-percent") || "0", 10)); }
    var state = box.getAttribute("data-bulk-state");
    var interval = parseInt(box.getAttribute("data-poll-ms") || "1000", 10);
    // The first line whose result may still change (waiting or being sold): asked from there on.
    function firstOpenLine() {
      var open = document.querySelector("tr[data-line] [data-row-state=waiting], tr[data-line] [data-row-state=pending]");
      return open ? open.closest("tr[data-line]").getAttribute("data-line") : "";
    }
    // Each row's result cell as the server renders it (the same template as the page).
    function showRows(rows) {
      (rows || []).forEach(function (row) {
        var cell = document.querySelector('tr[data-line="' + row.line + '"] [data-row-result]');
        if (cell) { cell.innerHTML = row.html; }
      });
    }
    function poll() {
      var url = box.getAttribute("data-bulk-progress");
      var from = firstOpenLine();
      if (from) { url += (url.indexOf("?") === -1 ? "?" : "&") + "from=" + encodeURIComponent(from); }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { window.setTimeout(poll, interval * 3); return; }
          show(data.percent);
          setText("[data-progress-done]", data.done);
          setText("[data-progress-succeeded]", data.succeeded);
          setText("[data-progress-failed]", data.failed);
          setText("[data-progress-review]", data.review);
          setText("[data-progress-state]", data.state_label);
          setText("[data-amount-succeeded]", data.succeeded_amount_text);
          setText("[data-amount-failed]", data.failed_amount_text);
          setText("[data-amount-review]", data.review_amount_text);
          showRows(data.rows);
          var stalled = box.querySelector("[data-progress-stalled]");
          if (stalled) { stalled.hidden = !data.stalled; }
          if (data.finished) { window.location.reload(); return; }
          window.setTimeout(poll, interval);
        })
        .catch(function () { window.setTimeout(poll, interval * 3); });
    }
    if (state === "queued" || state === "running") { window.setTimeout(poll, interval); }
  }
})();
