//! Reads a recording frame by frame. Whatever happened to the file (the recorder killed, a full
//! disk, flipped bits), it yields every complete, intact frame and then says where and why it
//! stopped: never a panic.
use std::{
    fs::File,
    io::{BufReader, ErrorKind, Read},
    path::{Path, PathBuf},
};

use super::frame::{
    FILE_HEADER_LEN, FORMAT_VERSION, FRAME_HEADER_LEN, FrameKind, MAGIC, MAX_BODY_LEN, decode,
    open_body, parse_frame_header,
};
use crate::{
    error::Error,
    model::Model,
    samples::{End, Header, IntervalSample},
};

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Interval(Box<IntervalSample>),
    End(End),
}

/// Why reading stopped before the end of a finished recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadProblem {
    /// The file ends inside a frame (the recorder was killed mid-write, or the disk filled).
    Truncated { offset: u64 },
    /// A frame failed its checksum or did not decode; it and everything after were skipped.
    Damaged { offset: u64, reason: String },
    /// The file ends after a complete frame, but without the end frame.
    NoEnd { offset: u64 },
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated { offset } => write!(
                f,
                "the file is cut short inside the frame at byte {offset} (was the recorder killed, or the disk full?)"
            ),
            Self::Damaged { offset, reason } => {
                write!(f, "damaged frame at byte {offset}: {reason}")
            }
            Self::NoEnd { offset } => write!(
                f,
                "the file ends at byte {offset} without an end frame (the recorder did not finish)"
            ),
        }
    }
}

/// A recording opened for reading, positioned after its header.
pub struct Reader<R = BufReader<File>> {
    input: R,
    path: PathBuf,
    /// The recording's header.
    pub header: Header,
    offset: u64,
    /// Set once reading stopped early.
    problem: Option<ReadProblem>,
    done: bool,
}

impl Reader {
    /// Opens a recording and reads its header. A file that is missing, empty, not a recording,
    /// of a newer format, or whose header is unreadable is an error.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::Recording {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Reader::new(BufReader::new(file), path)
    }
}

impl<R: Read> Reader<R> {
    /// Reads a recording's start and header from `input`; `path` names it in errors.
    pub fn new(mut input: R, path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::Recording {
            path: path.to_path_buf(),
            reason,
        };
        let mut start = [0u8; FILE_HEADER_LEN];
        let got = read_full(&mut input, &mut start).map_err(|e| fail(e.to_string()))?;
        if got == 0 {
            return Err(fail("the file is empty".into()));
        }
        if got < FILE_HEADER_LEN || &start[..8] != MAGIC || start[12..] != [0; 4] {
            return Err(fail("not a memtrace recording".into()));
        }
        let version = u32::from_le_bytes([start[8], start[9], start[10], start[11]]);
        if version == 0 || version > FORMAT_VERSION {
            return Err(fail(format!(
                "recording format {version}, but this memtrace reads formats up to {FORMAT_VERSION}: upgrade memtrace"
            )));
        }
        let mut reader = Self {
            input,
            path: path.to_path_buf(),
            header: Header::default(),
            offset: FILE_HEADER_LEN as u64,
            problem: None,
            done: false,
        };
        let header = match reader.next_body() {
            Ok(Some((FrameKind::Header, codec, payload))) => decode::<Header>(codec, &payload)
                .map_err(|e| fail(format!("unreadable header: {e}")))?,
            Ok(Some(_)) => return Err(fail("the first frame is not a header".into())),
            Ok(None) => {
                return Err(fail(
                    "no header: the recorder stopped before tracing started".into(),
                ));
            }
            Err(problem) => return Err(fail(format!("unreadable header: {problem}"))),
        };
        reader.header = header;
        Ok(reader)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why reading stopped before a proper end, once the frames are exhausted.
    pub fn problem(&self) -> Option<&ReadProblem> {
        self.problem.as_ref()
    }

    /// The next frame; `None` at the end of the file or at the first problem.
    pub fn next_frame(&mut self) -> Option<Frame> {
        if self.done {
            return None;
        }
        let start = self.offset;
        let frame = match self.next_body() {
            Ok(Some((FrameKind::Interval, codec, payload))) => {
                decode::<IntervalSample>(codec, &payload).map(|s| Frame::Interval(Box::new(s)))
            }
            Ok(Some((FrameKind::End, codec, payload))) => {
                decode::<End>(codec, &payload).map(Frame::End)
            }
            Ok(Some((FrameKind::Header, ..))) => Err("a second header".to_string()),
            Ok(None) => {
                self.done = true;
                self.problem = Some(ReadProblem::NoEnd { offset: start });
                return None;
            }
            Err(problem) => {
                self.done = true;
                self.problem = Some(problem);
                return None;
            }
        };
        match frame {
            Ok(Frame::End(end)) => {
                self.done = true;
                Some(Frame::End(end))
            }
            Ok(frame) => Some(frame),
            Err(reason) => {
                self.done = true;
                self.problem = Some(ReadProblem::Damaged {
                    offset: start,
                    reason,
                });
                None
            }
        }
    }

    /// The interval samples still in the file, in order, up to its end or its first problem
    /// (which [`Reader::problem`] then names); the end frame is passed over.
    pub fn intervals(&mut self) -> impl Iterator<Item = IntervalSample> + '_ {
        std::iter::from_fn(move || {
            loop {
                if let Frame::Interval(sample) = self.next_frame()? {
                    return Some(*sample);
                }
            }
        })
    }

    /// Reads one frame's body: `Ok(None)` at a clean end of file.
    fn next_body(&mut self) -> Result<Option<(FrameKind, u8, Vec<u8>)>, ReadProblem> {
        let offset = self.offset;
        let mut head = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.input, &mut head).map_err(|e| ReadProblem::Damaged {
            offset,
            reason: e.to_string(),
        })?;
        if got == 0 {
            return Ok(None);
        }
        if got < FRAME_HEADER_LEN {
            return Err(ReadProblem::Truncated { offset });
        }
        let (len, crc) = parse_frame_header(&head);
        if len > MAX_BODY_LEN {
            return Err(ReadProblem::Damaged {
                offset,
                reason: format!("implausible frame length {len}"),
            });
        }
        let mut body = vec![0u8; len as usize];
        let got = read_full(&mut self.input, &mut body).map_err(|e| ReadProblem::Damaged {
            offset,
            reason: e.to_string(),
        })?;
        if got < body.len() {
            return Err(ReadProblem::Truncated { offset });
        }
        let (kind, codec, payload) =
            open_body(&body, crc).map_err(|reason| ReadProblem::Damaged { offset, reason })?;
        self.offset += (FRAME_HEADER_LEN + body.len()) as u64;
        Ok(Some((kind, codec, payload.to_vec())))
    }
}

/// Fills `buf` as far as the input goes; returns the bytes read (less than asked: end of file).
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Folds a recording into a model: the intervals that `keep` accepts (by their start in ns
/// since the start of the recording), then the end; `focus` pids (the recording's own when
/// `None`) keep their timeline entries. Returns the model, the number of intervals read, and
/// why reading stopped early, if it did.
pub fn read_model(
    path: &Path,
    mut keep: impl FnMut(u64) -> bool,
    focus: Option<&[u32]>,
) -> Result<(Model, u64, Option<ReadProblem>), Error> {
    let mut reader = Reader::open(path)?;
    let start_ns = reader.header.start_mono_ns;
    let mut model = Model::new(reader.header.clone());
    if let Some(pids) = focus {
        model.focus = pids.to_vec();
    }
    let mut intervals = 0;
    while let Some(frame) = reader.next_frame() {
        match frame {
            Frame::Interval(sample) => {
                intervals += 1;
                if keep(sample.start_ns.saturating_sub(start_ns)) {
                    model.apply(&sample);
                } else {
                    model.skip(&sample);
                }
            }
            Frame::End(end) => model.finish(&end),
        }
    }
    Ok((model, intervals, reader.problem().cloned()))
}

#[cfg(test)]
mod tests;
