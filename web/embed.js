// The embed page's own script (embed.html): the demo element's URL parameters, its event log and
// the copy buttons. A file, not an inline script: the page's Content-Security-Policy forbids those.
import "./element.js";

const demo = document.getElementById("demo");
const log = document.getElementById("log");

// This page only: ?model=…, ?backend=…, ?steps=…, ?src=… set the demo's attributes.
const q = new URLSearchParams(location.search);
for (const k of ["model", "backend", "steps", "src", "td", "seed"]) {
  if (q.has(k)) demo.setAttribute(k, q.get(k));
}

demo.addEventListener("pix2seqd-result", (e) => {
  log.textContent = `pix2seqd-result: ${e.detail.segments.length} segments, ${e.detail.backend}, ${Math.round(e.detail.ms.total ?? 0)} ms`;
});
demo.addEventListener("pix2seqd-error", (e) => {
  log.textContent = `pix2seqd-error: ${e.detail.message}`;
});
for (const b of document.querySelectorAll("[data-copy]")) {
  b.addEventListener("click", async () => {
    const text = document.getElementById(b.dataset.copy).textContent;
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Select and copy";
    }
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
}
