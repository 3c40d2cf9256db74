//! Ingest: decoded RGBA8 image -> letterboxed, normalised model input. (Being written.)
