// Hover on the result: the label under the pointer in a tooltip, and the highlighted segments
// (under the pointer, or a legend row's class) outlined on a 2D canvas layered over the result.

/**
 * Wires the hover layer. `result()` is the last read-back result (with segmentIds) or null;
 * `canvas()` the result canvas (it can be replaced). Returns {setHighlight(ids, key), reset(),
 * resize()}: `reset()` after a new result, `resize()` after the stage changes size.
 */
export function initHover({ stage, hover, tooltip, dropzone, canvas, result }) {
  const hoverCtx = hover.getContext("2d");
  // The highlighted segment ids and what they are ("seg:ID", "class:C"; "" for none).
  const state = { ids: null, key: "" };

  function sizeHoverCanvas() {
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const w = Math.max(1, Math.round(stage.clientWidth * dpr));
    const h = Math.max(1, Math.round(stage.clientHeight * dpr));
    if (hover.width !== w || hover.height !== h) {
      hover.width = w;
      hover.height = h;
      state.key = "";
      drawHighlight();
    }
  }
  new ResizeObserver(sizeHoverCanvas).observe(stage);

  function setHighlight(ids, key) {
    if (key === state.key) return;
    state.key = key;
    state.ids = ids && ids.size ? ids : null;
    drawHighlight();
  }

  function drawHighlight() {
    const c = hover;
    hoverCtx.clearRect(0, 0, c.width, c.height);
    const r = result();
    const ids = state.ids;
    if (!r || !r.segmentIds || !ids) return;
    const W = c.width;
    const H = c.height;
    const sx = r.width / W;
    const sy = r.height / H;
    // bounding box (display pixels) of the highlighted segments
    let bx0 = Infinity;
    let by0 = Infinity;
    let bx1 = -Infinity;
    let by1 = -Infinity;
    for (const s of r.segments) {
      if (!ids.has(s.id)) continue;
      const [x, y, w, h] = s.bbox;
      bx0 = Math.min(bx0, x);
      by0 = Math.min(by0, y);
      bx1 = Math.max(bx1, x + w);
      by1 = Math.max(by1, y + h);
    }
    if (!Number.isFinite(bx0) || bx1 <= bx0) {
      bx0 = 0;
      by0 = 0;
      bx1 = r.width;
      by1 = r.height;
    }
    const x0 = Math.max(0, Math.floor(bx0 / sx) - 3);
    const y0 = Math.max(0, Math.floor(by0 / sy) - 3);
    const x1 = Math.min(W, Math.ceil(bx1 / sx) + 3);
    const y1 = Math.min(H, Math.ceil(by1 / sy) + 3);
    const w = x1 - x0;
    const h = y1 - y0;
    if (w <= 0 || h <= 0) return;
    const inside = new Uint8Array(w * h);
    const seg = r.segmentIds;
    const single = ids.size === 1 ? ids.values().next().value : null;
    for (let j = 0; j < h; j++) {
      const iy = Math.min(r.height - 1, Math.floor((y0 + j + 0.5) * sy));
      const row = iy * r.width;
      for (let i = 0; i < w; i++) {
        const ix = Math.min(r.width - 1, Math.floor((x0 + i + 0.5) * sx));
        const id = seg[row + ix];
        inside[j * w + i] = single !== null ? (id === single ? 1 : 0) : ids.has(id) ? 1 : 0;
      }
    }
    const img = hoverCtx.createImageData(w, h);
    const px = img.data;
    const at = (i, j) => (i >= 0 && j >= 0 && i < w && j < h ? inside[j * w + i] : 0);
    for (let j = 0; j < h; j++) {
      for (let i = 0; i < w; i++) {
        const k = (j * w + i) * 4;
        const v = inside[j * w + i];
        let edge = false;
        let near = false;
        for (let d = 1; d <= 2 && !edge; d++) {
          const a = at(i - d, j);
          const b = at(i + d, j);
          const cc = at(i, j - d);
          const dd = at(i, j + d);
          if (v && (!a || !b || !cc || !dd)) edge = true;
          if (!v && (a || b || cc || dd)) near = true;
        }
        if (edge) {
          px[k] = 255;
          px[k + 1] = 255;
          px[k + 2] = 255;
          px[k + 3] = 255;
        } else if (v) {
          px[k] = 255;
          px[k + 1] = 255;
          px[k + 2] = 255;
          px[k + 3] = 46;
        } else if (near) {
          px[k + 3] = 150; // dark halo for contrast on light images
        }
      }
    }
    hoverCtx.putImageData(img, x0, y0);
  }

  function segmentAt(ev) {
    const r = result();
    if (!r || !r.segmentIds) return null;
    const rect = canvas().getBoundingClientRect();
    if (!rect.width || !rect.height) return null;
    const x = Math.floor(((ev.clientX - rect.left) / rect.width) * r.width);
    const y = Math.floor(((ev.clientY - rect.top) / rect.height) * r.height);
    if (x < 0 || y < 0 || x >= r.width || y >= r.height) return null;
    const id = r.segmentIds[y * r.width + x];
    if (!id) return { id: 0, x, y };
    return { id, x, y, seg: r.segments.find((s) => s.id === id) };
  }

  stage.addEventListener("pointermove", (ev) => {
    const hit = segmentAt(ev);
    const tip = tooltip;
    if (!hit) {
      tip.hidden = true;
      setHighlight(null, "");
      return;
    }
    const vr = dropzone.getBoundingClientRect();
    tip.style.left = `${ev.clientX - vr.left}px`;
    tip.style.top = `${ev.clientY - vr.top}px`;
    tip.replaceChildren();
    if (hit.seg) {
      const s = hit.seg;
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = `rgb(${s.color.join(",")})`;
      const small = document.createElement("small");
      const pct = (100 * s.area) / (result().width * result().height);
      small.textContent = `${pct < 1 ? pct.toFixed(2) : pct.toFixed(1)}% · ${s.area.toLocaleString()} px`;
      tip.append(sw, s.isThing && s.instance != null ? `${s.label} #${s.instance}` : s.label, small);
      setHighlight(new Set([s.id]), `seg:${s.id}`);
    } else {
      tip.append("void (unlabelled)");
      setHighlight(null, "");
    }
    tip.hidden = false;
  });
  stage.addEventListener("pointerleave", () => {
    tooltip.hidden = true;
    setHighlight(null, "");
  });

  return {
    setHighlight,
    reset() {
      state.key = "";
      drawHighlight();
    },
    resize: sizeHoverCanvas,
  };
}
