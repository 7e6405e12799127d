//! kvserver: the kvstore HTTP service.

pub mod backend;
