//! Render: class / instance maps -> RGBA8 overlay with outlines. (Being written.)
