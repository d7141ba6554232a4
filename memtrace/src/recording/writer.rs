//! Appends a run's samples to a recording file as they are made: one write per frame, each
//! flushed to the disk, so that a killed recorder (or a lost machine) leaves every complete
//! interval readable.
use std::{
    fs::{File, OpenOptions},
    io::Write,
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::frame::{FrameKind, encode, file_header};
use crate::{
    collect::session::SampleSink,
    error::Error,
    samples::{End, Header, IntervalSample},
};

/// A recording being written.
pub struct Writer {
    file: File,
    path: PathBuf,
    /// Bytes written so far.
    bytes: u64,
    /// Interval frames written.
    intervals: u64,
    /// Why writing stopped; once set, nothing more is written.
    failed: Option<String>,
}

impl Writer {
    /// Creates (or truncates) the file and writes its start. Called before tracing starts, so
    /// that a path that cannot be written is refused up front.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let output = |source| Error::Output {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(output)?;
        let start = file_header();
        file.write_all(&start).map_err(output)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            bytes: start.len() as u64,
            intervals: 0,
            failed: None,
        })
    }

    /// Where it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Interval frames written so far.
    pub fn intervals(&self) -> u64 {
        self.intervals
    }

    /// Why the recording stopped being written (a full disk, an I/O error), if it did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn append(&mut self, kind: FrameKind, value: &impl Serialize) -> bool {
        if self.failed.is_some() {
            return false;
        }
        let result = encode(kind, value).and_then(|frame| {
            self.file
                .write_all(&frame)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| e.to_string())?;
            Ok(frame.len() as u64)
        });
        match result {
            Ok(len) => {
                self.bytes += len;
                true
            }
            Err(reason) => {
                log::warn!(
                    "{}: recording stopped after {} intervals: {reason}",
                    self.path.display(),
                    self.intervals
                );
                self.failed = Some(reason);
                false
            }
        }
    }
}

impl SampleSink for Writer {
    fn header(&mut self, header: &Header) {
        self.append(FrameKind::Header, header);
    }

    fn interval(&mut self, sample: &IntervalSample) {
        if self.append(FrameKind::Interval, sample) {
            self.intervals += 1;
        }
    }

    fn end(&mut self, end: &End) {
        self.append(FrameKind::End, end);
    }
}
