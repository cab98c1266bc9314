/* Cashier desk: built for a queue. No inline scripts anywhere (CSP: script-src 'self').
 *
 * - the code field counts characters, selects itself on focus (a new scan replaces the last code)
 *   and takes any scan that starts while the focus is elsewhere (on Redeem, on a slip);
 * - Enter on the code field shows "Checking with LINA…" at once; Esc clears the field;
 * - "+" prints the slip; after a redemption it can print by itself (the person's own setting);
 * - "Scan with camera" reads a QR code or barcode: the browser's BarcodeDetector where there is
 *   one, otherwise the vendored ZXing decoder, loaded only then.
 */
(function () {
  "use strict";
  var FRAGMENT = "X-Desk-Fragment";
  var stopCamera = function () {};  // the camera of the content shown now (see bindCamera)

  function isTextEntry(el) {
    if (!el) { return false; }
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") { return true; }
    return el.tagName === "INPUT" && ["text", "search", "number", "email", "password", ""].indexOf(el.type) >= 0;
  }
  function codeInput() { return document.querySelector("[data-code-input]"); }
  function amountInput() { return document.querySelector("#redeem-form input[name=amount]"); }

  // --- The check: "Checking with LINA…" at once, then the answer ------------------------------
  function canFetch(form) {
    // A page that reloads itself (outcome unknown) would reload over the card: it posts.
    return Boolean(window.fetch && window.FormData && window.history && window.history.pushState &&
      document.getElementById("main") && !document.body.hasAttribute("data-refresh-seconds") &&
      form.getAttribute("action"));
  }

  function showContent(html, url) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var fragment = holder.querySelector("[data-desk-fragment]");
    if (!fragment) { return false; }
    stopCamera();
    var main = document.getElementById("main");
    main.innerHTML = fragment.innerHTML;
    document.title = fragment.getAttribute("data-title") || document.title;
    // The slip of the page before is not this page's: "+" and auto-print must not print it.
    ["data-slip", "data-auto-print", "data-refresh-seconds"].forEach(function (name) {
      document.body.removeAttribute(name);
    });
    window.history.pushState({ desk: true }, "", url);
    bind(main, true);
    return true;
  }

  function sendCheck(form) {
    var request = window.fetch(form.getAttribute("action"), {
      method: "POST",
      body: new window.FormData(form),
      headers: { "X-Desk-Fragment": "1" },
      credentials: "same-origin"
    });
    request.then(function (response) {
      return response.text().then(function (html) {
        if (response.headers.get(FRAGMENT) === "1" && showContent(html, response.url || form.action)) { return; }
        // Not the fragment (a refused form, the login page, an error page): show it as the page.
        document.open();
        document.write(html);
        document.close();
      });
    }, function () {
      // No answer at all: a check moves no money, so the plain form may ask again.
      form.submit();
    });
  }

  function bindCheck(root) {
    var input = root.querySelector("[data-code-input]");
    var counter = root.querySelector("[data-code-counter]");
    var checkForm = root.querySelector("#check-form");
    var checking = root.querySelector("#checking");
    if (input) {
      var updateCounter = function () {
        if (!counter) { return; }
        var length = input.value.replace(/[\s\-_.]+/g, "").length;
        counter.textContent = length ? length + " / 16" : "";
      };
      input.addEventListener("input", updateCounter);
      input.addEventListener("focus", function () { input.select(); });
      updateCounter();
    }
    if (checkForm && checking) {
      checkForm.addEventListener("submit", function (event) {
        // Within a frame of Enter: the cashier sees the check is under way, not a frozen page.
        checking.hidden = false;
        checkForm.setAttribute("aria-busy", "true");
        document.querySelectorAll("[data-card], #result-state, #provider-error").forEach(function (el) {
          if (el !== checking) { el.hidden = true; }
        });
        window.setTimeout(function () {
          var button = document.getElementById("check-button");
          if (button) { button.disabled = true; }
        }, 0);
        if (canFetch(checkForm)) {
          event.preventDefault();
          sendCheck(checkForm);
        }
      });
    }
  }

  function bindRedeem(root, fresh) {
    var redeemForm = root.querySelector("#redeem-form");
    var redeeming = root.querySelector("#redeeming");
    if (redeemForm && redeeming) {
      redeemForm.addEventListener("submit", function () { redeeming.hidden = false; });
    }
    if (redeemForm && fresh && redeemForm.hasAttribute("data-once")) {
      // portal.js does this for the forms of a loaded page; this form came with the fragment.
      redeemForm.addEventListener("submit", function () {
        if (redeemForm.dataset.submitted) { return; }
        redeemForm.dataset.submitted = "1";
        window.setTimeout(function () {
          redeemForm.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
    }
    var amount = root.querySelector("#redeem-form input[name=amount]");
    if (amount && !amount.readOnly) {
      // Prefilled with the whole remaining value: Enter takes it all, a typed amount replaces it.
      amount.addEventListener("focus", function () { amount.select(); });
      if (document.activeElement === amount) { amount.select(); }
    }
  }

  // --- Printing ------------------------------------------------------------------------------
  // The setting is the person's own (stored by the portal); ticking it saves it at once.
  function bindPreference(root) {
    var preference = root.querySelector("#preference-form input[type=checkbox]");
    if (preference) {
      preference.addEventListener("change", function () { preference.form.submit(); });
    }
  }

  function autoPrint() {
    var slip = document.body.getAttribute("data-slip");
    if (slip && document.body.hasAttribute("data-auto-print")) {
      // Once per slip: reloading the result page does not print it again.
      var printedKey = "desk.printed." + slip;
      try {
        if (!window.sessionStorage.getItem(printedKey)) {
          window.sessionStorage.setItem(printedKey, "1");
          window.setTimeout(function () { window.print(); }, 50);
        }
      } catch (e) { /* storage refused: no automatic print */ }
    }
  }

  // --- Keys ------------------------------------------------------------------------------------
  // Bound once: every look-up is made when the key is pressed, for the content shown then.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var input = codeInput();
    var slip = document.body.getAttribute("data-slip");
    if (event.key === "Escape" && input) {
      event.preventDefault();
      input.value = "";
      input.dispatchEvent(new Event("input"));
      document.querySelectorAll("[data-card]").forEach(function (el) { el.hidden = true; });
      input.focus();
      return;
    }
    if (event.key === "+" && slip) {
      event.preventDefault();
      window.print();
      return;
    }
    if (!input || event.key.length !== 1 || !/[A-Za-z0-9]/.test(event.key)) { return; }
    var active = document.activeElement;
    if (active === input) { return; }
    // Letters never belong in the amount; anything typed outside a text field is a new scan.
    var scanInAmount = active === amountInput() && /[A-Za-z]/.test(event.key);
    if (isTextEntry(active) && !scanInAmount) { return; }
    input.focus();  // selects the old code, so the key typed now replaces it
  });

  // The content shown after a check is not in the browser's history as a page: going back or
  // forward loads the page of that address.
  window.addEventListener("popstate", function () { window.location.reload(); });

  // --- Camera ----------------------------------------------------------------------------------
  function bindCamera(root) {
    var input = root.querySelector("[data-code-input]");
    var checkForm = root.querySelector("#check-form");
    var cameraButton = root.querySelector("#camera-button");
    var panel = root.querySelector("#camera-panel");
    var video = root.querySelector("#camera-video");
    var status = root.querySelector("#camera-status");
    var stopButton = root.querySelector("#camera-stop");
    if (!cameraButton || !panel || !input || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return;
    }
    cameraButton.hidden = false;
    var stream = null;
    var running = false;

    function stop() {
      running = false;
      if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
      stream = null;
      video.srcObject = null;
      panel.hidden = true;
      cameraButton.setAttribute("aria-expanded", "false");
    }
    stopCamera = stop;

    function found(text) {
      stop();
      input.value = text.trim();
      input.dispatchEvent(new Event("input"));
      input.focus();
      // A camera read is a scan: it ends with "Enter".
      if (typeof checkForm.requestSubmit === "function") { checkForm.requestSubmit(); } else { checkForm.submit(); }
    }

    function loadDecoder() {
      return new Promise(function (resolve, reject) {
        if (window.ZXing) { resolve(window.ZXing); return; }
        var script = document.createElement("script");
        script.src = cameraButton.getAttribute("data-decoder");
        script.onload = function () { resolve(window.ZXing); };
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }

    function nativeReader() {
      var detector = new window.BarcodeDetector();
      return function () {
        return detector.detect(video).then(function (codes) { return codes.length ? codes[0].rawValue : null; });
      };
    }

    function zxingReader(ZXing) {
      var hints = new Map();
      hints.set(ZXing.DecodeHintType.POSSIBLE_FORMATS, [
        ZXing.BarcodeFormat.QR_CODE, ZXing.BarcodeFormat.CODE_128, ZXing.BarcodeFormat.CODE_39,
        ZXing.BarcodeFormat.EAN_13, ZXing.BarcodeFormat.DATA_MATRIX
      ]);
      hints.set(ZXing.DecodeHintType.TRY_HARDER, true);
      var reader = new ZXing.MultiFormatReader();
      reader.setHints(hints);
      var canvas = document.createElement("canvas");
      return function () {
        if (!video.videoWidth) { return Promise.resolve(null); }
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        canvas.getContext("2d", { willReadFrequently: true }).drawImage(video, 0, 0);
        try {
          var source = new ZXing.HTMLCanvasElementLuminanceSource(canvas);
          var bitmap = new ZXing.BinaryBitmap(new ZXing.HybridBinarizer(source));
          return Promise.resolve(reader.decode(bitmap).getText());
        } catch (e) {
          return Promise.resolve(null);  // no code in this frame (NotFoundException and friends)
        }
      };
    }

    function scanLoop(read) {
      if (!running) { return; }
      read().then(function (text) {
        if (text) { found(text); } else { window.setTimeout(function () { scanLoop(read); }, 150); }
      }, function () { window.setTimeout(function () { scanLoop(read); }, 300); });
    }

    cameraButton.setAttribute("aria-controls", "camera-panel");
    cameraButton.setAttribute("aria-expanded", "false");
    cameraButton.addEventListener("click", function () {
      if (running) { stop(); return; }
      var reader = "BarcodeDetector" in window
        ? Promise.resolve(nativeReader())
        : loadDecoder().then(zxingReader);
      running = true;
      panel.hidden = false;
      cameraButton.setAttribute("aria-expanded", "true");
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          return video.play();
        })
        .then(function () { return reader; })
        .then(scanLoop)
        .catch(function () {
          stop();
          var message = root.querySelector("#camera-unavailable");
          status.textContent = message ? message.textContent : "";
          panel.hidden = false;
          video.hidden = true;
        });
    });
    stopButton.addEventListener("click", function () { stop(); cameraButton.focus(); });
  }

  // --- Putting it together ---------------------------------------------------------------------
  function bind(root, fresh) {
    bindCheck(root);
    bindRedeem(root, fresh);
    bindPreference(root);
    bindCamera(root);
    if (fresh) {
      // autofocus works on a loaded page only: the content put in place gets its focus here.
      var target = root.querySelector("[autofocus]") || root.querySelector("[data-code-input]");
      if (target) { target.focus(); }
    }
  }

  bind(document, false);
  autoPrint();
})();
