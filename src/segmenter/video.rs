//! The video state: the last k predicted maps, fed back to the model as analog bits.

use std::collections::VecDeque;

use crate::backend::Backend;
use crate::error::Error;
use crate::model::ModelConfig;

/// The last predicted (class, instance) maps of a video at mask resolution, oldest first. They
/// stay on the backend (on the GPU between frames).
pub(super) struct VideoHistory<T> {
    maps: VecDeque<(T, T)>,
}

impl<T> VideoHistory<T> {
    pub(super) fn new() -> Self {
        VideoHistory { maps: VecDeque::new() }
    }

    pub(super) fn len(&self) -> usize {
        self.maps.len()
    }

    /// Forgets every frame (a new clip).
    pub(super) fn clear(&mut self) {
        self.maps.clear();
    }

    /// Keeps `maps` as the newest and at most `k` maps in all.
    pub(super) fn remember(&mut self, maps: (T, T), k: usize) {
        self.maps.push_back(maps);
        while self.maps.len() > k {
            self.maps.pop_front();
        }
    }

    /// The video condition: analog bits of the last k maps `[1, Hm, Wm, k·n_bits]`, oldest first;
    /// frames missing at the start of a clip (every frame, for a still image: `video` false) are
    /// all-void maps (every bit −b). `None` for image models.
    pub(super) fn bits<B: Backend<Tensor = T>>(
        &self,
        b: &mut B,
        cfg: &ModelConfig,
        video: bool,
    ) -> Result<Option<T>, Error> {
        let k = cfg.video_prev_masks;
        if k == 0 {
            return Ok(None);
        }
        let (hm, wm) = (cfg.mask_size[0], cfg.mask_size[1]);
        let held = if video { self.maps.len() } else { 0 };
        let missing = k - held.min(k);
        // All-void padding, only at the start of a clip (no upload per frame once it is full).
        let empty = if missing > 0 { Some(b.upload_u32(&[1, hm, wm], &vec![0; hm * wm])?) } else { None };
        let skip = held.saturating_sub(k);
        let frames: Vec<T> = (0..k)
            .map(|i| {
                let (c, inst) = match &empty {
                    Some(e) if i < missing => (e, e),
                    _ => {
                        let maps = &self.maps[skip + i - missing];
                        (&maps.0, &maps.1)
                    }
                };
                b.ids_to_bits(c, inst, &cfg.bit_spec())
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(b.concat_channels(&frames.iter().collect::<Vec<_>>())?))
    }
}
