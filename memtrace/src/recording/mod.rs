//! The recording file: the samples of a run, appended interval by interval as checksummed
//! frames, readable after the recorder died at any point. docs/recording-format.md is the spec.
//!
//! ```text
//! file   = magic "MEMTRACE" · version u32 LE · reserved u32 LE · frame*
//! frame  = length u32 LE · crc32 u32 LE · body          (crc32 of the body, length of the body)
//! body   = kind u8 · codec u8 · payload
//! kind   = 1 header | 2 interval | 3 end
//! codec  = 0 CBOR | 1 deflate(CBOR)
//! ```
mod frame;
mod reader;
mod rotate;
mod writer;

pub use frame::{FORMAT_VERSION, FrameKind, MAGIC};
pub use reader::{Frame, ReadProblem, Reader, read_model};
pub use rotate::{RotatingWriter, Rotation};
pub use writer::Writer;
