// The Engine card: the backend and why, the adapter, what this machine measured for a photo,
// and the model's facts (with the webcam model's state).

import { formatBytes, formatMs } from "./results.js";
import { app, els, pub } from "./state.js";

function adapterName(a) {
  if (!a) return "";
  const name = a.name && String(a.name).trim();
  if (name) return name;
  return [a.vendor, a.architecture].filter((x) => x && String(x).trim()).join(" ") || a.deviceType || "unnamed adapter";
}

export function renderEngine() {
  const info = app.info || {};
  const m = info.model || {};
  const gpu = app.backend === "webgpu";
  els.backend.textContent = gpu ? "WebGPU" : "CPU (Web Worker)";
  els.backend.dataset.backend = app.backend;
  els.backend.title = app.reason;

  let adapter;
  if (gpu) {
    const a = info.adapter;
    adapter = adapterName(a) || app.probe?.name || "GPU";
    if (a?.isFallbackAdapter || app.probe?.isFallback) adapter += " (software)";
  } else {
    adapter = app.probe?.name ? `${app.probe.name} (not used)` : "no GPU adapter in use";
  }
  els.adapter.textContent = adapter;
  els.adapter.title = `Adapter: ${adapter}`;

  let speed;
  if (gpu && (info.adapter?.isFallbackAdapter || app.probe?.isFallback)) {
    speed = "A software GPU emulates WebGPU on the CPU.";
  } else if (gpu) {
    speed = "Runs on your GPU.";
  } else {
    speed = `Runs on the CPU in a Web Worker (WebAssembly, ${info.cpuPath || "one thread"}), so the page stays responsive.`;
  }
  // Only what this page measured on this machine: no promise made up front.
  const run = app.measured;
  speed +=
    run && run.model === app.model?.name && run.backend === app.backend
      ? ` Here a photo took ${formatMs(run.ms)} (${run.steps} step${run.steps === 1 ? "" : "s"}, ${run.width}×${run.height}); fewer steps are faster.`
      : " The time per photo on this machine shows here after the first one; fewer steps are faster.";
  els.backendNote.innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = `${app.reason}.`;
  els.backendNote.append(strong, " ", speed);

  const facts = [
    ["Model", m.name ?? app.model?.name ?? "—"],
    ["Input", m.imageSize ? `${m.imageSize[1]}×${m.imageSize[0]}` : "—"],
    ["Mask", m.maskSize ? `${m.maskSize[1]}×${m.maskSize[0]}` : "—"],
    ["Classes", m.classes ? `${m.classes.filter((c) => c.name !== "void").length}` : "—"],
    ["Video", m.videoPrevMasks ? `${m.videoPrevMasks} previous masks` : "single images"],
    ["Weights", m.trained === false ? "untrained (random)" : m.trained ? "trained" : "—"],
    ["Download", app.model ? `${formatBytes(app.model.weights.length)}${app.model.fromCache ? ", from cache" : ""}` : "—"],
  ];
  if (m.purpose) facts.splice(1, 0, ["Purpose", m.purpose]);
  if (!gpu && info.cpuPath) facts.push(["CPU path", info.cpuPath]);
  const vm = pub.videoModel;
  if (vm.url) {
    const state = app.slot && app.slot === app.slots.video ? "in use" : { none: "", idle: "loaded when the webcam starts", loading: "loading…", ready: "ready", failed: `could not load: ${vm.error}` }[vm.state];
    facts.push(["Webcam model", state ? `${vm.name} (${state})` : vm.name]);
  }
  els.facts.replaceChildren(
    ...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  els.untrained.hidden = m.trained !== false;
}
