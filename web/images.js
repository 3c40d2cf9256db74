// Images: decoding a dropped or opened file (with a message naming it when it is not an image
// the browser can read) and drawing any image source into RGBA pixels for the engine.

import { errorMessage } from "./shared.js";

/** Images larger than this on the long side are drawn scaled down to it. */
export const MAX_SIDE = 4096;


function sniffImageType(bytes) {
  const b = bytes;
  const at = (i, s) => [...s].every((ch, j) => b[i + j] === ch.charCodeAt(0));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && at(1, "PNG")) return "png";
  if (b.length >= 12 && at(0, "RIFF") && at(8, "WEBP")) return "webp";
  if (b.length >= 6 && at(0, "GIF8")) return "gif";
  if (b.length >= 2 && at(0, "BM")) return "bmp";
  if (b.length >= 12 && at(4, "ftyp") && (at(8, "avif") || at(8, "avis"))) return "avif";
  return null;
}

/** Decodes an image File/Blob into an ImageBitmap, with a readable error naming the file. */
export async function decodeImageFile(file) {
  const name = file.name || "image";
  const head = new Uint8Array(await file.slice(0, 32).arrayBuffer());
  const kind = sniffImageType(head);
  const isSvg = /svg/i.test(file.type) || /\.svg$/i.test(name);
  if (!kind && !isSvg) {
    throw new Error(
      file.size === 0
        ? `Could not decode '${name}': the file is empty.`
        : `Could not decode '${name}': not a JPEG, PNG or WebP image.`,
    );
  }
  try {
    if (isSvg) {
      const url = URL.createObjectURL(file);
      try {
        const img = new Image();
        img.src = url;
        await img.decode();
        return await createImageBitmap(img);
      } finally {
        URL.revokeObjectURL(url);
      }
    }
    return await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch (e) {
    throw new Error(`Could not decode '${name}': the ${kind ? kind.toUpperCase() : "image"} data is damaged or unsupported.`);
  }
}

/**
 * Draws an image source into RGBA8 pixels, scaled down only when its long side exceeds MAX_SIDE.
 * Returns {rgba: Uint8ClampedArray, width, height, naturalWidth, naturalHeight, scaled}.
 */
export function imageToRGBA(source, naturalWidth, naturalHeight, maxSide = MAX_SIDE) {
  if (!naturalWidth || !naturalHeight) throw new Error("The image has no size.");
  const scale = Math.min(1, maxSide / Math.max(naturalWidth, naturalHeight));
  const width = Math.max(1, Math.round(naturalWidth * scale));
  const height = Math.max(1, Math.round(naturalHeight * scale));
  const canvas =
    typeof OffscreenCanvas !== "undefined"
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement("canvas"), { width, height });
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(source, 0, 0, width, height);
  let data;
  try {
    data = ctx.getImageData(0, 0, width, height).data;
  } catch (e) {
    throw new Error(`Cannot read the image's pixels (${errorMessage(e)}): serve it from this site or with CORS.`);
  }
  return { rgba: data, width, height, naturalWidth, naturalHeight, scaled: scale < 1 };
}

