//! coco128-seg (`../shared/data/coco128-seg/{images,labels}`), as
//! `train/pix2seqd_train/data/coco128.py` reads it: 128 COCO train2017 images with YOLO polygon
//! labels, things only.
//!
//! Each line of `labels/NAME.txt` is `class_index x1 y1 x2 y2 ...` (coordinates normalised to
//! [0, 1], class_index 0..79 in the usual COCO order). Polygon k (1-based, file order) becomes
//! instance k with class id `class_index + 1`. Polygons are drawn largest first (shoelace area; on
//! equal area the later line wins), so small objects in front of large ones stay visible. Pixels
//! outside every polygon are void. The fill follows PIL's `ImageDraw.polygon` closely: vertices
//! truncated to integers, scanlines through pixel centres at integer y, each span rounded to the
//! nearest pixels (even-odd rule). On the 16 held-out images the two differ on 0.2% of the object
//! pixels (measured against Pillow 13), all on object edges.
//!
//! Splits: the images sorted by name; the last 16 are `val` (held out), the first 112 `train`.

use std::path::{Path, PathBuf};

use super::{read_rgb, sorted_stems, DataError, DatasetClass, Example};

/// The 80 COCO thing classes in the order of the YOLO class indices.
pub const COCO80: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The `objects` model's classes (`data/groups.py`): six groups of COCO things.
pub const GROUPS: [DatasetClass; 6] = [
    DatasetClass { name: "person", isthing: true, color: [220, 20, 60] },
    DatasetClass { name: "vehicle", isthing: true, color: [0, 80, 200] },
    DatasetClass { name: "animal", isthing: true, color: [255, 140, 0] },
    DatasetClass { name: "furniture", isthing: true, color: [150, 90, 40] },
    DatasetClass { name: "food", isthing: true, color: [120, 200, 40] },
    DatasetClass { name: "other", isthing: true, color: [0, 170, 170] },
];

/// Members of each group but `other` (`groups.py` `_GROUP_MEMBERS`); every other class is `other`.
const GROUP_MEMBERS: [(&str, &[&str]); 5] = [
    ("person", &["person"]),
    ("vehicle", &["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"]),
    (
        "animal",
        &[
            "bird",
            "cat",
            "dog",
            "horse",
            "sheep",
            "cow",
            "elephant",
            "bear",
            "zebra",
            "giraffe",
            "teddy bear",
        ],
    ),
    ("furniture", &["bench", "chair", "couch", "potted plant", "bed", "dining table", "toilet"]),
    (
        "food",
        &["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
    ),
];

/// The group of a COCO class (`groups.coco_group`).
pub fn coco_group(name: &str) -> &'static str {
    GROUP_MEMBERS.iter().find(|(_, members)| members.contains(&name)).map(|(g, _)| *g).unwrap_or("other")
}

/// Held-out images (the last ones by name).
pub const VAL_COUNT: usize = 16;
pub const SPLITS: [&str; 3] = ["train", "val", "all"];

/// The images of coco128-seg that have no label file because they show no COCO object (a street
/// sign against towers, a snowy mountain top; checked by eye): all void. Any other image without
/// a label file is an error, so a lost label is never read as "nothing here".
pub const BACKGROUND_IMAGES: [&str; 2] = ["000000000250", "000000000508"];

/// One split of coco128-seg.
#[derive(Clone, Debug)]
pub struct Coco128 {
    root: PathBuf,
    split: String,
    names: Vec<String>,
}

impl Coco128 {
    /// Open a split of the coco128-seg folder (normally `data_root().join("coco128-seg")`).
    pub fn open(root: &Path, split: &str) -> Result<Coco128, DataError> {
        if !SPLITS.contains(&split) {
            return Err(DataError::BadSplit {
                dataset: "coco128-seg".into(),
                split: split.into(),
                valid: SPLITS.iter().map(|s| s.to_string()).collect(),
            });
        }
        let image_dir = root.join("images");
        if !image_dir.is_dir() {
            return Err(DataError::MissingDir { what: "coco128-seg images".into(), path: image_dir });
        }
        let all = sorted_stems(&image_dir, "jpg")?;
        if all.len() <= VAL_COUNT {
            return Err(DataError::Empty {
                what: format!("more than {VAL_COUNT} .jpg images"),
                path: image_dir,
            });
        }
        let cut = all.len() - VAL_COUNT;
        let names = match split {
            "train" => all[..cut].to_vec(),
            "val" => all[cut..].to_vec(),
            _ => all,
        };
        Ok(Coco128 { root: root.to_path_buf(), split: split.into(), names })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Label files without an image (coco128-seg ships `000000000656` and `000000000659`): they
    /// are not part of any split.
    pub fn orphan_labels(&self) -> Result<Vec<String>, DataError> {
        let images = sorted_stems(&self.root.join("images"), "jpg")?;
        let labels = sorted_stems(&self.root.join("labels"), "txt")?;
        Ok(labels.into_iter().filter(|l| images.binary_search(l).is_err()).collect())
    }

    /// Item `index` at its original resolution: class id = COCO class index + 1, instance k = line k.
    pub fn load(&self, index: usize) -> Result<Example, DataError> {
        let name = self.names.get(index).ok_or_else(|| DataError::Index {
            dataset: format!("coco128-seg {}", self.split),
            index,
            len: self.names.len(),
        })?;
        let image = read_rgb(&self.root.join("images").join(format!("{name}.jpg")))?;
        let label_path = self.root.join("labels").join(format!("{name}.txt"));
        // Only the known background images have no label file (as in coco128.py).
        let text =
            crate::limits::read_capped(&label_path, crate::limits::MAX_LABEL_TEXT_BYTES).and_then(|bytes| {
                String::from_utf8(bytes)
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "is not UTF-8 text"))
            });
        let polygons = match text {
            Ok(text) => parse_polygons(&text, image.width, image.height, &label_path)?,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && BACKGROUND_IMAGES.contains(&name.as_str()) =>
            {
                Vec::new()
            }
            Err(source) => return Err(DataError::Io { path: label_path, source }),
        };
        let (class, instance) = rasterise(&polygons, image.width, image.height);
        Ok(Example { name: name.clone(), image, class, instance })
    }
}

/// A polygon in pixel coordinates with its COCO class index.
#[derive(Clone, Debug, PartialEq)]
pub struct Polygon {
    pub label: u32,
    pub points: Vec<[f64; 2]>,
}

/// The polygons of a YOLO segmentation label file. `path` only names the file in errors.
pub fn parse_polygons(
    text: &str,
    width: usize,
    height: usize,
    path: &Path,
) -> Result<Vec<Polygon>, DataError> {
    let mut polygons = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad =
            |reason: String| DataError::LabelText { path: path.to_path_buf(), line: line_no + 1, reason };
        if fields.len() < 7 || fields.len() % 2 == 0 {
            return Err(bad(format!("expected 'class x1 y1 x2 y2 x3 y3 ...', got {} fields", fields.len())));
        }
        let label: u32 =
            fields[0].parse().map_err(|_| bad(format!("class index {:?} is not an integer", fields[0])))?;
        if label as usize >= COCO80.len() {
            return Err(bad(format!("class index {label} outside 0..{}", COCO80.len() - 1)));
        }
        let mut points = Vec::with_capacity(fields.len() / 2);
        for pair in fields[1..].chunks_exact(2) {
            let parse = |s: &str| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(format!("coordinate {s:?} is not a number")))
            };
            points.push([parse(pair[0])? * width as f64, parse(pair[1])? * height as f64]);
        }
        polygons.push(Polygon { label, points });
    }
    Ok(polygons)
}

/// Shoelace area of a polygon.
pub fn polygon_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    let twice: f64 =
        (0..n).map(|i| points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]).sum();
    0.5 * twice.abs()
}

/// Class and instance maps: polygons drawn largest first, each pixel taking the last polygon
/// drawn over it.
pub fn rasterise(polygons: &[Polygon], width: usize, height: usize) -> (Vec<u32>, Vec<u32>) {
    let mut instance = vec![0u32; width * height];
    let mut order: Vec<usize> = (0..polygons.len()).collect();
    // Largest first; equal areas keep file order, so the later line is drawn last and wins.
    order.sort_by(|&a, &b| {
        polygon_area(&polygons[b].points).total_cmp(&polygon_area(&polygons[a].points)).then(a.cmp(&b))
    });
    let mut crossings = Vec::new();
    for k in order {
        // PIL truncates the vertices to integer pixel coordinates.
        let points: Vec<[f64; 2]> = polygons[k].points.iter().map(|p| [p[0].floor(), p[1].floor()]).collect();
        for y in 0..height {
            let yf = y as f64;
            crossings.clear();
            for i in 0..points.len() {
                let ([x0, y0], [x1, y1]) = (points[i], points[(i + 1) % points.len()]);
                // Half-open in y, so a vertex on the scanline is counted once.
                if (y0 <= yf && yf < y1) || (y1 <= yf && yf < y0) {
                    crossings.push(x0 + (yf - y0) * (x1 - x0) / (y1 - y0));
                }
            }
            crossings.sort_by(f64::total_cmp);
            for pair in crossings.chunks_exact(2) {
                let start = (pair[0] + 0.5).floor().max(0.0) as usize;
                let end = ((pair[1] + 0.5).floor() + 1.0).clamp(0.0, width as f64) as usize;
                for v in &mut instance[y * width + start.min(end)..y * width + end] {
                    *v = k as u32 + 1;
                }
            }
        }
    }
    let class =
        instance.iter().map(|&id| if id == 0 { 0 } else { polygons[id as usize - 1].label + 1 }).collect();
    (class, instance)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(label: u32, x0: f64, y0: f64, size: f64) -> Polygon {
        Polygon { label, points: vec![[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size]] }
    }

    #[test]
    fn squares_cover_their_pixels_and_small_ones_stay_on_top() {
        // A big square drawn first, a small one inside it on top.
        let polygons = vec![square(2, 1.0, 1.0, 2.0), square(0, 0.0, 0.0, 6.0)];
        let (class, instance) = rasterise(&polygons, 8, 8);
        let at = |x: usize, y: usize| (class[y * 8 + x], instance[y * 8 + x]);
        assert_eq!(at(0, 0), (1, 2)); // the big square: person (label 0 -> class 1), line 2
        assert_eq!(at(2, 2), (3, 1)); // the small square on top: car, line 1
        assert_eq!(at(7, 7), (0, 0)); // outside: void
                                      // Pixel centres at integer coordinates, scanlines half-open in y: [0, 6) rows, [0, 6] columns.
        assert_eq!(instance.iter().filter(|&&v| v != 0).count(), 6 * 7);
        assert!((polygon_area(&polygons[1].points) - 36.0).abs() < 1e-12);
    }

    #[test]
    fn bad_label_lines_name_the_file_and_line() {
        let p = Path::new("labels/x.txt");
        let err = parse_polygons("0 0.1 0.1 0.2 0.2 0.3\n", 10, 10, p).unwrap_err().to_string();
        assert!(err.contains("labels/x.txt") && err.contains("line 1"), "{err}");
        let err = parse_polygons("0 0.1 0.1 0.2 0.2 0.3 0.1\n\n80 0 0 1 0 1 1\n", 10, 10, p)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("80"), "{err}");
        let err = parse_polygons("0 0.1 x 0.2 0.2 0.3 0.1\n", 10, 10, p).unwrap_err().to_string();
        assert!(err.contains("\"x\""), "{err}");
        let ok = parse_polygons("5 0.5 0 1 0 1 1\n", 10, 20, p).unwrap();
        assert_eq!(ok, vec![Polygon { label: 5, points: vec![[5.0, 0.0], [10.0, 0.0], [10.0, 20.0]] }]);
    }

    #[test]
    fn every_group_member_is_a_coco_class() {
        for (_, members) in GROUP_MEMBERS {
            for m in members {
                assert!(COCO80.contains(m), "{m}");
            }
        }
        assert_eq!(coco_group("cow"), "animal");
        assert_eq!(coco_group("laptop"), "other");
    }
}
