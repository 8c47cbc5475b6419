//! Statement splitter (placeholder).
