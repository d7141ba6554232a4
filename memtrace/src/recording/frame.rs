//! Frames: encoding a sample into a checksummed, length-delimited body and back. Pure: bytes
//! in, bytes out.
use std::io::{Read, Write};

use flate2::{Compression, read::DeflateDecoder, write::DeflateEncoder};
use serde::{Serialize, de::DeserializeOwned};

/// The first 8 bytes of every recording.
pub const MAGIC: &[u8; 8] = b"MEMTRACE";
/// The version this memtrace writes. Readers accept every version up to theirs.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the first frame: magic, version, reserved.
pub const FILE_HEADER_LEN: usize = 16;
/// Bytes before a frame's body: length and checksum.
pub const FRAME_HEADER_LEN: usize = 8;
/// The largest body a reader accepts: a length beyond it is damage, not a frame.
pub const MAX_BODY_LEN: u32 = 256 << 20;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Header = 1,
    Interval = 2,
    End = 3,
}

impl TryFrom<u8> for FrameKind {
    type Error = u8;

    fn try_from(value: u8) -> Result<Self, u8> {
        match value {
            1 => Ok(Self::Header),
            2 => Ok(Self::Interval),
            3 => Ok(Self::End),
            other => Err(other),
        }
    }
}

/// How a payload is encoded.
mod codec {
    pub const CBOR: u8 = 0;
    pub const DEFLATE_CBOR: u8 = 1;
}

/// The start of a recording file.
pub fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut bytes = [0u8; FILE_HEADER_LEN];
    bytes[..8].copy_from_slice(MAGIC);
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes
}

/// Encodes `value` as one whole frame. The payload is deflated when that makes it smaller.
pub fn encode(kind: FrameKind, value: &impl Serialize) -> Result<Vec<u8>, String> {
    let mut cbor = Vec::new();
    ciborium::into_writer(value, &mut cbor).map_err(|e| e.to_string())?;
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::fast());
    deflater.write_all(&cbor).map_err(|e| e.to_string())?;
    let deflated = deflater.finish().map_err(|e| e.to_string())?;
    let (codec, payload) = if deflated.len() < cbor.len() {
        (codec::DEFLATE_CBOR, deflated)
    } else {
        (codec::CBOR, cbor)
    };
    let mut body = Vec::with_capacity(2 + payload.len());
    body.push(kind as u8);
    body.push(codec);
    body.extend_from_slice(&payload);
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len <= MAX_BODY_LEN)
        .ok_or_else(|| format!("a frame of {} bytes is too large", body.len()))?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// A frame header: the body's length and checksum.
pub fn parse_frame_header(bytes: &[u8; FRAME_HEADER_LEN]) -> (u32, u32) {
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let crc = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    (len, crc)
}

/// Checks a body against its checksum and splits it into its kind, codec and payload.
pub fn open_body(body: &[u8], crc: u32) -> Result<(FrameKind, u8, &[u8]), String> {
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    let [kind, codec, payload @ ..] = body else {
        return Err("frame shorter than its kind and codec".into());
    };
    let kind = FrameKind::try_from(*kind).map_err(|k| format!("unknown frame kind {k}"))?;
    if *codec != codec::CBOR && *codec != codec::DEFLATE_CBOR {
        return Err(format!("unknown codec {codec}"));
    }
    Ok((kind, *codec, payload))
}

/// Decodes a payload into `T`.
pub fn decode<T: DeserializeOwned>(codec: u8, payload: &[u8]) -> Result<T, String> {
    let result = if codec == codec::DEFLATE_CBOR {
        // A bounded inflate: a damaged length must not become an allocation bomb.
        let mut cbor = Vec::new();
        DeflateDecoder::new(payload)
            .take(u64::from(MAX_BODY_LEN) * 4)
            .read_to_end(&mut cbor)
            .map_err(|e| format!("inflating: {e}"))?;
        ciborium::from_reader(cbor.as_slice())
    } else {
        ciborium::from_reader(payload)
    };
    result.map_err(|e| format!("decoding: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_and_says_its_length_and_checksum() {
        let value = vec![("swap_in".to_string(), 40_960u64); 50];
        let frame = encode(FrameKind::Interval, &value).expect("encode");
        let header: [u8; FRAME_HEADER_LEN] = frame[..8].try_into().expect("8 bytes");
        let (len, crc) = parse_frame_header(&header);
        assert_eq!(len as usize, frame.len() - FRAME_HEADER_LEN);
        let (kind, codec, payload) = open_body(&frame[8..], crc).expect("valid");
        assert_eq!(kind, FrameKind::Interval);
        assert_eq!(codec, codec::DEFLATE_CBOR, "repetitive data is compressed");
        let back: Vec<(String, u64)> = decode(codec, payload).expect("decode");
        assert_eq!(back, value);
    }

    #[test]
    fn incompressible_payloads_are_stored_as_is() {
        let frame = encode(FrameKind::End, &7u8).expect("encode");
        assert_eq!(frame[9], codec::CBOR);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let frame = encode(FrameKind::Header, &"header").expect("encode");
        let (_, crc) = parse_frame_header(&frame[..8].try_into().expect("8 bytes"));
        let mut body = frame[8..].to_vec();
        body[3] ^= 0x10;
        assert!(open_body(&body, crc).is_err());
        assert!(open_body(&[], crc32fast::hash(&[])).is_err());
        let unknown = [9u8, 0];
        assert!(open_body(&unknown, crc32fast::hash(&unknown)).is_err());
    }
}
