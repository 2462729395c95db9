//! MPEG-TS chunking.
