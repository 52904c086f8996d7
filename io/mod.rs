//! I/O on the runtime's reactor (being written).
