//! Incremental trace upload: `PATCH /api/v4/jobs/:id/trace`.
//!
//! The runner sends raw bytes with `Content-Range: <start>-<end>` where `end`
//! is **inclusive** (`start + len - 1`) and there is no `bytes ` unit. The
//! server appends only when `start` equals its current length; otherwise it
//! answers `416` with `Range: 0-<current length>` and the runner resumes from
//! there. Success is `202` with `Range: 0-<new length>`.

/// A `Content-Range` as runners send it: `start-end`, end inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset of the last byte (inclusive).
    pub end: u64,
}

impl ContentRange {
    /// The range of `len` (> 0) bytes starting at `start`.
    pub fn of(start: u64, len: u64) -> Self {
        Self {
            start,
            end: start + len.saturating_sub(1),
        }
    }

    /// Parses `start-end` (also accepts a leading `bytes ` unit and a
    /// trailing `/total`, which some clients add).
    pub fn parse(header: &str) -> Option<Self> {
        let s = header.trim();
        let s = s.strip_prefix("bytes ").unwrap_or(s).trim();
        let s = s.split('/').next()?;
        let (a, b) = s.split_once('-')?;
        let start = a.trim().parse().ok()?;
        let end = b.trim().parse().ok()?;
        (end >= start).then_some(Self { start, end })
    }

    /// Number of bytes covered.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a range covers at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl std::fmt::Display for ContentRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Formats the server's `Range` answer for a trace of `len` bytes: `0-<len>`.
pub fn range_header(len: u64) -> String {
    format!("0-{len}")
}

/// Parses the server's `Range: 0-<len>` answer into the length the server has.
pub fn parse_range_header(header: &str) -> Option<u64> {
    let (_, b) = header.trim().split_once('-')?;
    b.trim().parse().ok()
}

/// `crc32:%08x` of `data`, as sent in `output.checksum`.
pub fn checksum_string(crc: u32) -> String {
    format!("crc32:{crc:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(ContentRange::of(0, 10).to_string(), "0-9");
        assert_eq!(
            ContentRange::parse("10-19").unwrap(),
            ContentRange::of(10, 10)
        );
        assert_eq!(ContentRange::parse("bytes 0-0/1").unwrap().len(), 1);
        assert!(ContentRange::parse("9-3").is_none());
        assert!(ContentRange::parse("x").is_none());
        assert_eq!(parse_range_header(&range_header(42)), Some(42));
        assert_eq!(checksum_string(0xab), "crc32:000000ab");
    }
}
