//! What the relay serves to web browsers.

pub mod assets;
