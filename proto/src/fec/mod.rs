//! Forward error correction.
