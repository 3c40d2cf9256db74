// The page's inputs: the file pickers, the webcam, freeze and cancel buttons, the controls, drag
// and drop anywhere on the viewer, and paste.

import { errorMessage } from "./shared.js";
import { showControlValues } from "./controls.js";
import { setState, setStatus, settledState, showError } from "./status.js";
import { cancelRun, openFile, runStill } from "./stills.js";
import { app, els, loop, webcamApi } from "./state.js";
import { freeze, openVideoFile, startWebcam, stopLoop } from "./webcam.js";

let debounceTimer = 0;
function onControlChange() {
  showControlValues();
  clearTimeout(debounceTimer);
  debounceTimer = setTimeout(() => {
    if (app.mode === "image") runStill(); // supersedes a run in flight
  }, 250);
}

els.file.addEventListener("change", () => {
  const f = els.file.files?.[0];
  els.file.value = "";
  openFile(f);
});
els.videofile.addEventListener("change", () => {
  const f = els.videofile.files?.[0];
  els.videofile.value = "";
  if (f) openVideoFile(f);
});
els.webcam.addEventListener("click", async () => {
  if (loop.active && loop.kind === "webcam") {
    stopLoop();
    setState(settledState());
    setStatus("Webcam stopped");
    if (app.mode === "image") runStill();
    return;
  }
  try {
    await startWebcam();
  } catch (e) {
    showError(errorMessage(e));
  }
});
els.freeze.addEventListener("click", () => freeze(!webcamApi.paused));
els.cancel.addEventListener("click", () => {
  app.rerun = false;
  cancelRun();
});

for (const el of [els.steps, els.td, els.opacity]) el.addEventListener("input", onControlChange);
for (const el of [els.steps, els.td]) el.addEventListener("input", () => (app.samplerTouched = true));
els.outline.addEventListener("change", onControlChange);
els.seed.addEventListener("change", onControlChange);

// drag and drop anywhere on the viewer (and don't let a drop elsewhere navigate away)
let dragDepth = 0;
const hasFiles = (ev) => [...(ev.dataTransfer?.types ?? [])].includes("Files");
els.dropzone.addEventListener("dragenter", (ev) => {
  ev.preventDefault();
  dragDepth++;
  els.dropzone.classList.add("dragging");
});
els.dropzone.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
});
els.dropzone.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) els.dropzone.classList.remove("dragging");
});
function handleDrop(ev) {
  ev.preventDefault();
  dragDepth = 0;
  els.dropzone.classList.remove("dragging");
  const file = ev.dataTransfer?.files?.[0];
  if (file) openFile(file);
  else showError("Drop an image file (JPEG, PNG or WebP) from your computer.");
}
els.dropzone.addEventListener("drop", (ev) => {
  ev.stopPropagation();
  handleDrop(ev);
});
window.addEventListener("dragover", (ev) => {
  if (hasFiles(ev)) ev.preventDefault();
});
window.addEventListener("drop", (ev) => {
  if (hasFiles(ev)) handleDrop(ev);
});
els.dropzone.addEventListener("keydown", (ev) => {
  if ((ev.key === "Enter" || ev.key === " ") && ev.target === els.dropzone) {
    ev.preventDefault();
    els.file.click();
  }
});
window.addEventListener("paste", (ev) => {
  const file = [...(ev.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
  if (file) openFile(file);
});
