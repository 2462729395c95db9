//! Peer tests.
