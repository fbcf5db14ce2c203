//! The job's trace as the runner keeps it until the coordinator has it all.
//!
//! Every byte accepted here (already masked) is kept in order, counted and
//! checksummed; the sender reads from any offset, so a `416` from the server
//! can rewind to wherever the server really is. Output beyond `output_limit`
//! is dropped after one notice, as the official runner does.

/// The notice written once when the log reaches its limit.
pub fn limit_notice(limit: usize) -> String {
    format!(
        "\n\x1b[33;1mJob's log exceeded limit of {limit} bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n"
    )
}

/// Default `output_limit`: 4 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 4096 * 1024;

/// The accepted trace bytes, their CRC-32 and the size limit.
#[derive(Debug)]
pub struct TraceBuffer {
    data: Vec<u8>,
    crc: crc32fast::Hasher,
    limit: usize,
    truncated: bool,
}

impl TraceBuffer {
    /// An empty buffer that accepts up to `limit` bytes of output.
    pub fn new(limit: usize) -> Self {
        Self {
            data: Vec::new(),
            crc: crc32fast::Hasher::new(),
            limit,
            truncated: false,
        }
    }

    /// Appends `bytes`, cutting at the limit and then writing the notice
    /// once. Returns how many input bytes were accepted.
    pub fn append(&mut self, bytes: &[u8]) -> usize {
        if self.truncated {
            return 0;
        }
        let room = self.limit.saturating_sub(self.data.len());
        let take = bytes.len().min(room);
        self.push(&bytes[..take]);
        if take < bytes.len() {
            self.truncated = true;
            let notice = limit_notice(self.limit);
            self.push(notice.as_bytes());
        }
        take
    }

    fn push(&mut self, bytes: &[u8]) {
        self.crc.update(bytes);
        self.data.extend_from_slice(bytes);
    }

    /// Bytes from `offset` to the end (empty when `offset` is past the end).
    pub fn since(&self, offset: usize) -> &[u8] {
        self.data.get(offset..).unwrap_or(&[])
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// `crc32:%08x` of every byte held, for the final job update.
    pub fn checksum(&self) -> String {
        forerunner_protocol::trace::checksum_string(self.crc.clone().finalize())
    }

    /// Whether output was dropped at the limit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_and_offsets() {
        let mut b = TraceBuffer::new(DEFAULT_OUTPUT_LIMIT);
        b.append(b"hello ");
        b.append(b"world");
        assert_eq!(b.len(), 11);
        assert_eq!(b.since(6), b"world");
        assert_eq!(b.since(99), b"");
        assert_eq!(
            b.checksum(),
            format!("crc32:{:08x}", crc32fast::hash(b"hello world"))
        );
    }

    #[test]
    fn truncates_once_at_the_limit() {
        let mut b = TraceBuffer::new(8);
        assert_eq!(b.append(b"12345"), 5);
        assert_eq!(b.append(b"67890"), 3);
        assert_eq!(b.append(b"more"), 0);
        assert!(b.truncated());
        let text = String::from_utf8(b.since(0).to_vec()).unwrap();
        assert!(text.starts_with("12345678\n"));
        assert!(text.contains("Job's log exceeded limit of 8 bytes."));
        assert_eq!(text.matches("exceeded").count(), 1);
        assert_eq!(
            b.checksum(),
            format!("crc32:{:08x}", crc32fast::hash(text.as_bytes()))
        );
    }
}
