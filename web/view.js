// The result view: the stage (photo or video with the result canvas over it), the legend, hover
// (hover.js) and the downloads (downloads.js) of the last read-back result.

import { initDownloads } from "./downloads.js";
import { initHover } from "./hover.js";
import { drawMaskOverVideo, drawOverlay, summarizeSegments } from "./results.js";
import { controlOptions } from "./controls.js";
import { renderTimings, showError } from "./status.js";
import { $, app, canvasEl, els, pub } from "./state.js";

const hover = initHover({
  stage: els.stage,
  hover: els.hover,
  tooltip: els.tooltip,
  dropzone: els.dropzone,
  canvas: canvasEl,
  result: () => app.result,
});

const downloads = initDownloads(
  { overlay: $("dl-overlay"), coco: $("dl-coco"), segments: $("dl-segments") },
  () => {
    const r = app.result;
    if (!r?.segmentIds || !pub.lastResult) return null;
    return {
      result: r,
      publicResult: pub.lastResult,
      canvas: canvasEl(),
      classes: app.info?.model?.classes ?? [],
      cardJson: app.model?.json ?? "",
      name: app.mode === "image" ? app.source?.name : `${app.mode}-frame.png`,
    };
  },
  showError,
);

export function setMode(mode) {
  app.mode = mode;
  document.body.classList.remove("mode-idle", "mode-image", "mode-webcam", "mode-video");
  document.body.classList.add(`mode-${mode}`);
  els.freeze.hidden = !(mode === "webcam" || mode === "video");
}

export function showStage(width, height) {
  els.empty.hidden = true;
  els.stage.hidden = false;
  els.stage.style.setProperty("--ar", `${width} / ${height}`);
  hover.resize();
}

function publicResult(r, extra = {}) {
  return {
    backend: r.backend,
    width: r.width,
    height: r.height,
    ms: r.ms,
    segments: r.segments.map((s) => ({ ...s })),
    drawn: r.drawn,
    conditionedOn: r.conditionedOn,
    ...extra,
  };
}

export function drawResult(r, video = false) {
  const c = canvasEl();
  if (r.overlay && app.canvasKind === "2d") {
    if (video) drawMaskOverVideo(c, app.ctx2d, r, controlOptions().opacity);
    else drawOverlay(c, app.ctx2d, r);
  }
  if (r.overlay || r.drawn) c.classList.add("on");
}

export function showReadback(r, wallMs, extra) {
  app.result = r;
  app.stageMs = r.ms;
  pub.lastResult = publicResult(r, { wallMs, ...extra });
  renderLegend(r);
  hover.reset();
  downloads.update();
}

function renderLegend(r) {
  const classes = app.info?.model?.classes ?? [];
  const rows = summarizeSegments(r, classes);
  const total = r.width * r.height || 1;
  els.segcount.textContent = r.segments.length ? String(r.segments.length) : "";
  if (!rows.length) {
    els.legend.innerHTML = '<li class="placeholder">No segments found (everything is void).</li>';
    return;
  }
  els.legend.replaceChildren(
    ...rows.map((e) => {
      const li = document.createElement("li");
      li.tabIndex = 0;
      li.dataset.class = String(e.class);
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = `rgb(${e.color.join(",")})`;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = e.label;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.isThing ? `${e.count} instance${e.count === 1 ? "" : "s"}` : "stuff";
      name.append(kind);
      const meta = document.createElement("span");
      meta.className = "meta";
      const pct = (100 * e.area) / total;
      meta.textContent = pct >= 10 ? `${pct.toFixed(0)}%` : `${pct.toFixed(1)}%`;
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("i");
      fill.style.width = `${Math.max(1, Math.min(100, pct))}%`;
      fill.style.background = sw.style.background;
      bar.append(fill);
      li.append(sw, name, meta, bar);
      li.setAttribute("aria-label", `${e.label}: ${e.isThing ? `${e.count} instances, ` : ""}${meta.textContent} of the image`);
      const on = () => hover.setHighlight(new Set(e.ids), `class:${e.class}`);
      const off = () => hover.setHighlight(null, "");
      li.addEventListener("pointerenter", on);
      li.addEventListener("pointerleave", off);
      li.addEventListener("focus", on);
      li.addEventListener("blur", off);
      return li;
    }),
  );
}

export function clearResultView() {
  app.result = null;
  app.stageMs = null;
  app.lastWallMs = null;
  canvasEl().classList.remove("on");
  els.legend.innerHTML = '<li class="placeholder">No result yet.</li>';
  els.segcount.textContent = "";
  hover.setHighlight(null, "");
  renderTimings();
  downloads.update();
}
