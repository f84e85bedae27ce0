//! The load generator (in progress).
