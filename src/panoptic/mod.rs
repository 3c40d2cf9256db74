//! Panoptic label maps after sampling: post-processing, palette and overlay, COCO panoptic I/O,
//! metrics (PQ, mIoU, DAVIS J&F). (Being written.)
