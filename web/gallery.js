// The sample gallery: thumbnails of the photos in samples/ (staged from assets/samples/ by
// `cargo xtask web`, listed with their model, licence, source and author in samples.json).

const SAMPLES_URL = new URL("./samples/samples.json", import.meta.url);

/** The samples list ([{file, title, model, licence, source, author, url}]), or [] without one. */
export async function loadSamples() {
  try {
    const res = await fetch(SAMPLES_URL, { cache: "no-cache" });
    if (!res.ok) return [];
    const list = (await res.json())?.samples ?? [];
    // Plain file names only: the list builds URLs under samples/.
    return list
      .filter((s) => typeof s?.file === "string" && /^[\w][\w.-]*$/.test(s.file))
      .map((s) => ({ ...s, url: new URL(s.file, SAMPLES_URL).href }));
  } catch {
    return [];
  }
}

/** The tooltip of a sample: title, licence, author and source. */
export function sampleCredit(s) {
  return `${s.title}\nLicence: ${s.licence}\nAuthor: ${s.author}\nSource: ${s.source}\nSegmented with: ${s.model}`;
}

/** A sample photo as a File (what a dropped or opened photo is). */
export async function fetchSample(s) {
  const res = await fetch(s.url);
  if (!res.ok) throw new Error(`Could not load the sample ${s.file}: HTTP ${res.status}.`);
  const blob = await res.blob();
  return new File([blob], s.file, { type: blob.type || "image/jpeg" });
}

/** Fills `list` (a <ul>) with one button per sample; `onPick(sample)` runs on a click. */
export function renderGallery(section, list, samples, onPick) {
  list.replaceChildren(
    ...samples.map((s) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "sample";
      b.dataset.file = s.file;
      b.title = sampleCredit(s);
      b.setAttribute("aria-label", `Segment the sample photo: ${s.title} (${s.licence}, ${s.author})`);
      const img = document.createElement("img");
      img.src = s.url;
      img.alt = "";
      img.loading = "lazy";
      img.decoding = "async";
      const cap = document.createElement("span");
      cap.textContent = s.title;
      b.append(img, cap);
      b.addEventListener("click", () => onPick(s));
      li.append(b);
      return li;
    }),
  );
  section.hidden = samples.length === 0;
}
