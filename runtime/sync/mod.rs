//! Cancellation-aware synchronisation primitives (being written).
