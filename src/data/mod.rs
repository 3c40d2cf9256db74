//! Readers for the evaluation datasets in `../shared/data` (CamVid, DAVIS 2016). (Being written.)
