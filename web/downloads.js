// Downloads of the last read-back result: the overlay as drawn (PNG), COCO panoptic (a PNG of
// segment ids plus its JSON, as `pix2seqd segment` writes them: src/panoptic/coco.rs) and the
// segments as JSON.

/** COCO category id of each class: the card's `source_id` when it has one, else the class id. */
function categoryIds(cardJson, classes) {
  let cardClasses = [];
  try {
    cardClasses = JSON.parse(cardJson)?.config?.classes ?? [];
  } catch {
    // no card: class ids
  }
  return new Map(classes.map((c) => [c.id, cardClasses[c.id]?.source_id ?? c.id]));
}

/**
 * The COCO panoptic JSON of one image (`images`, `annotations` with `segments_info`,
 * `categories`), its PNG named `pngName`.
 */
export function cocoJson(result, { classes, cardJson, imageName, pngName }) {
  const ids = categoryIds(cardJson, classes);
  const imageId = 1;
  return {
    info: { description: "pix2seqd panoptic segmentation (web page)" },
    images: [{ id: imageId, file_name: imageName, width: result.width, height: result.height }],
    annotations: [
      {
        image_id: imageId,
        file_name: pngName,
        segments_info: result.segments.map((s) => ({
          id: s.id,
          category_id: ids.get(s.class) ?? s.class,
          iscrowd: 0,
          area: s.area,
          bbox: s.bbox,
        })),
      },
    ],
    categories: classes
      .filter((c) => c.id !== 0)
      .map((c) => ({ id: ids.get(c.id), name: c.name, isthing: c.isThing ? 1 : 0, color: c.color })),
  };
}

/**
 * A PNG (Blob) of the segment-id map in COCO panoptic colours (R + 256·G + 256²·B); alpha is 255
 * (readers ignore it). Opaque pixels go through a 2D canvas unchanged.
 */
export async function cocoPng(result) {
  const { width, height, segmentIds } = result;
  const px = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < segmentIds.length; i++) {
    const id = segmentIds[i];
    px[4 * i] = id & 0xff;
    px[4 * i + 1] = (id >> 8) & 0xff;
    px[4 * i + 2] = (id >> 16) & 0xff;
    px[4 * i + 3] = 255;
  }
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(px, width, height), 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

function canvasPng(canvas) {
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the canvas could not be encoded as PNG"))), "image/png"),
  );
}

function save(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

const jsonBlob = (v) => new Blob([JSON.stringify(v, null, 2) + "\n"], { type: "application/json" });

/** The base of the downloaded files' names: the photo's name without its extension. */
function stem(name) {
  const base = String(name || "result").replace(/\.[^.]*$/, "");
  return base.replace(/[^\w.-]+/g, "_").slice(0, 80) || "result";
}

/**
 * Wires the download buttons. `source()` returns the current state:
 * {result (with segmentIds), publicResult, canvas, classes, cardJson, name}, or null when there is
 * nothing to download. `onError(message)` shows a failure. Returns {update()}: call it whenever
 * the result changes.
 */
export function initDownloads({ overlay, coco, segments }, source, onError) {
  const buttons = [overlay, coco, segments];
  const run = (fn) => async () => {
    const s = source();
    if (!s) return;
    try {
      await fn(s);
    } catch (e) {
      onError(`Download failed: ${e?.message ?? e}`);
    }
  };
  overlay.addEventListener(
    "click",
    run(async (s) => save(await canvasPng(s.canvas), `${stem(s.name)}_overlay.png`)),
  );
  coco.addEventListener(
    "click",
    run(async (s) => {
      const base = stem(s.name);
      const pngName = `${base}_panoptic.png`;
      save(await cocoPng(s.result), pngName);
      const json = cocoJson(s.result, { classes: s.classes, cardJson: s.cardJson, imageName: s.name, pngName });
      save(jsonBlob(json), `${base}_panoptic.json`);
    }),
  );
  segments.addEventListener(
    "click",
    run(async (s) => save(jsonBlob(s.publicResult), `${stem(s.name)}_segments.json`)),
  );
  return {
    update() {
      const s = source();
      for (const b of buttons) b.disabled = !s;
    },
  };
}
