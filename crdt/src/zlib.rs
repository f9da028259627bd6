//! A newcomer's document, compressed (`welcome.doc_encoding: "zlib"`,
//! docs/protocol.md 5.1).
//!
//! Loro's update encoding of a long history is about a byte per keystroke
//! and not compressed: automerge-paper's whole history is 259 KB of Loro
//! bytes, 345 KB of base64 on the wire. A zlib stream (RFC 1950, the
//! format every language's standard library reads) takes it to about 113 KB.
//! The server compresses a room's history once per compaction, on the
//! blocking pool, and every later newcomer is sent the same bytes; a client
//! inflates with a cap, so a hostile or broken server cannot make it
//! allocate without bound.

use std::io::{Read, Write};

use flate2::Compression;

use crate::DocError;

/// How a newcomer's document may travel: what a `join` says the client
/// reads (`doc_encodings`), the server's choice in `welcome.doc_encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocEncoding {
    /// Loro's bytes as they are.
    #[default]
    Raw,
    /// One zlib stream (RFC 1950) of Loro's bytes.
    Zlib,
}

/// Compresses `bytes` as one zlib stream (level 6: nine tenths of level 9's
/// gain at a third of its time on Loro's updates).
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 2),
        Compression::default(),
    );
    // Writing into a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// Decompresses one zlib stream of at most `cap` bytes: more, or a stream
/// that is not zlib, is an error and nothing is returned.
pub fn inflate(bytes: &[u8], cap: usize) -> Result<Vec<u8>, DocError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(3).min(cap));
    let read = flate2::read::ZlibDecoder::new(bytes)
        .take(u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DocError::BadSnapshot(format!("the zlib stream does not inflate: {e}")))?;
    if read > cap {
        return Err(DocError::BadSnapshot(format!(
            "the zlib stream inflates past {cap} bytes"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_inflates_to_what_was_deflated() {
        let text = "fn main() { println!(\"hello\"); }\n".repeat(1000);
        let z = deflate(text.as_bytes());
        assert!(z.len() < text.len() / 10, "{} of {}", z.len(), text.len());
        assert_eq!(inflate(&z, text.len()).unwrap(), text.as_bytes());
    }

    #[test]
    fn a_stream_past_the_cap_is_refused() {
        let z = deflate(&vec![0u8; 1 << 20]);
        assert!(matches!(
            inflate(&z, (1 << 20) - 1),
            Err(DocError::BadSnapshot(_))
        ));
        assert_eq!(inflate(&z, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn bytes_that_are_not_zlib_are_refused() {
        assert!(inflate(b"loro bytes, not zlib", 1 << 20).is_err());
        let z = deflate(b"cut short");
        assert!(inflate(&z[..z.len() - 3], 1 << 20).is_err());
    }
}
