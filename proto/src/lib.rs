//! shoal wire protocol v1.
