// Loaded before app.js as a classic script (no inline script: the page's Content-Security-Policy
// allows scripts from this origin only). Until app.js takes over, shows a script that failed to
// load or run instead of a blank page.
(function () {
  function fail(message) {
    if (window.pix2seqd && window.pix2seqd.started) return;
    var el = document.getElementById("error");
    if (!el) return;
    el.textContent = "The page could not start: " + message;
    el.hidden = false;
    document.body.dataset.state = "error";
  }
  // Capture phase: a <script> that fails to load fires a non-bubbling error on the element.
  window.addEventListener(
    "error",
    function (ev) {
      var t = ev.target;
      if (t && t.tagName === "SCRIPT") fail((t.getAttribute("src") || "a script") + " failed to load.");
      else fail(ev.message || "a script failed to run");
    },
    true,
  );
})();
