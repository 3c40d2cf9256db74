//! Where an image lands on the model's canvas (the letterbox): shared by ingest, the readout, the
//! overlay and post-processing, so it sits below all of them and depends on none.

/// A letterbox that cannot exist.
#[derive(Debug, Clone, PartialEq)]
pub enum LetterboxError {
    ZeroSize { orig_h: usize, orig_w: usize, canvas_h: usize, canvas_w: usize },
    Invalid(Letterbox),
}

impl LetterboxError {
    /// What is wrong, without the "letterbox:" prefix (kernels report it under their own name).
    pub fn detail(&self) -> String {
        match self {
            LetterboxError::ZeroSize { orig_h, orig_w, canvas_h, canvas_w } => {
                format!("cannot fit {orig_h}x{orig_w} into {canvas_h}x{canvas_w}: a size is zero")
            }
            LetterboxError::Invalid(lb) => {
                format!("invalid letterbox {lb:?}: sizes must be ≥ 1 and content ≤ canvas")
            }
        }
    }
}

impl std::fmt::Display for LetterboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "letterbox: {}", self.detail())
    }
}

impl std::error::Error for LetterboxError {}

/// Where an image of `orig` size lands on the model's canvas: resized to `content` (≤ canvas) and
/// placed at the top left; the rest of the canvas is padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Letterbox {
    pub orig_h: usize,
    pub orig_w: usize,
    pub canvas_h: usize,
    pub canvas_w: usize,
    pub content_h: usize,
    pub content_w: usize,
}

impl Letterbox {
    /// Fits `orig_h × orig_w` inside `canvas_h × canvas_w` keeping the aspect ratio, as the training
    /// code's evaluation geometry: `scale = min(canvas_h / orig_h, canvas_w / orig_w)` (f64),
    /// `content = max(1, round_half_even(orig · scale))`, capped at the canvas.
    pub fn fit(
        orig_h: usize,
        orig_w: usize,
        canvas_h: usize,
        canvas_w: usize,
    ) -> Result<Letterbox, LetterboxError> {
        if orig_h == 0 || orig_w == 0 || canvas_h == 0 || canvas_w == 0 {
            return Err(LetterboxError::ZeroSize { orig_h, orig_w, canvas_h, canvas_w });
        }
        let scale = (canvas_h as f64 / orig_h as f64).min(canvas_w as f64 / orig_w as f64);
        let resized =
            |orig: usize, canvas: usize| ((orig as f64 * scale).round_ties_even() as usize).clamp(1, canvas);
        Ok(Letterbox {
            orig_h,
            orig_w,
            canvas_h,
            canvas_w,
            content_h: resized(orig_h, canvas_h),
            content_w: resized(orig_w, canvas_w),
        })
    }

    /// The resize factor from the original image to the canvas.
    pub fn scale(&self) -> f64 {
        (self.canvas_h as f64 / self.orig_h as f64).min(self.canvas_w as f64 / self.orig_w as f64)
    }

    /// No resize and no padding: canvas = content = orig = `h × w`.
    pub fn identity(h: usize, w: usize) -> Letterbox {
        Letterbox { orig_h: h, orig_w: w, canvas_h: h, canvas_w: w, content_h: h, content_w: w }
    }

    /// Every size non-zero and the content inside the canvas.
    pub fn validate(&self) -> Result<(), LetterboxError> {
        let sizes = [self.orig_h, self.orig_w, self.canvas_h, self.canvas_w, self.content_h, self.content_w];
        if sizes.contains(&0) || self.content_h > self.canvas_h || self.content_w > self.canvas_w {
            return Err(LetterboxError::Invalid(*self));
        }
        Ok(())
    }
}
