//! collab-bench: the load generator and benchmarks of collab.
//!
//! The binary (`collab-bench --help`) drives collab-server over the real
//! protocol and compares it with a bare WebSocket relay ([`relay`]); the
//! criterion benches in `benches/` time the pieces (protocol encoding,
//! applying an editing trace, loading a snapshot). This library holds what
//! both share.

pub mod idle;
pub mod interfere;
pub mod load;
pub mod pace;
pub mod procfs;
pub mod relay;
pub mod target;
pub mod trace;
