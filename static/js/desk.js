/* Cashier desk: a live hint of how many code characters were scanned or typed (of 16). */
(function () {
  "use strict";
  var input = document.querySelector("[data-code-input]");
  var counter = document.querySelector("[data-code-counter]");
  if (!input || !counter) { return; }
  function update() {
    var length = input.value.replace(/[\s\-_.]+/g, "").length;
    counter.textContent = length ? length + " / 16" : "";
  }
  input.addEventListener("input", update);
  // A new scan replaces the last code instead of being appended to it.
  input.addEventListener("focus", function () { input.select(); });
  update();
})();
