//! Trace files and artifact archives under the data directory.
//!
//! A job's trace is `<data dir>/traces/<job id>.log`. Bytes are only ever
//! appended, at the offset the runner names, which must equal the current
//! length; the file is never rewritten. Artifacts are
//! `<data dir>/artifacts/<job id>/<artifact type>.<ext>`; the `archive`
//! (zip) one is what dependent jobs and the API download.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;

use crate::ci::Ci;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// Appended; the trace now has this many bytes.
    Done(u64),
    /// The offset was not the current length, which is given.
    Mismatch(u64),
}

impl Ci {
    fn trace_path(&self, job_id: i64) -> PathBuf {
        self.data_dir().join("traces").join(format!("{job_id}.log"))
    }

    /// The directory of a job's artifacts.
    pub fn artifacts_dir(&self, job_id: i64) -> PathBuf {
        self.data_dir().join("artifacts").join(job_id.to_string())
    }

    /// The path of a job's `archive` artifact.
    pub fn archive_path(&self, job_id: i64) -> PathBuf {
        self.artifacts_dir(job_id).join("archive.zip")
    }

    /// The number of trace bytes stored for a job.
    pub async fn trace_len(&self, job_id: i64) -> u64 {
        tokio::fs::metadata(self.trace_path(job_id))
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The whole trace (empty when there is none).
    pub async fn read_trace(&self, job_id: i64) -> anyhow::Result<Vec<u8>> {
        match tokio::fs::read(self.trace_path(job_id)).await {
            Ok(bytes) => Ok(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(err) => Err(err).context("failed to read a trace file"),
        }
    }

    /// The trace from byte `offset` on (empty when there is nothing there
    /// yet): for following a trace as it grows without reading it whole.
    pub async fn read_trace_from(&self, job_id: i64, offset: u64) -> anyhow::Result<Vec<u8>> {
        use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
        let mut file = match tokio::fs::File::open(self.trace_path(job_id)).await {
            Ok(f) => f,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err).context("failed to open a trace file"),
        };
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .context("failed to seek in a trace file")?;
        let mut out = Vec::new();
        file.read_to_end(&mut out)
            .await
            .context("failed to read a trace file")?;
        Ok(out)
    }

    /// Appends `bytes` at `offset` if it is the current length.
    pub async fn append_trace(
        &self,
        job_id: i64,
        offset: u64,
        bytes: &[u8],
    ) -> anyhow::Result<Append> {
        let _one_at_a_time = self.inner.traces.lock().await;
        let path = self.trace_path(job_id);
        let len = self.trace_len(job_id).await;
        if offset != len {
            return Ok(Append::Mismatch(len));
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .with_context(|| format!("failed to open {}", path.display()))?;
        file.write_all(bytes)
            .await
            .with_context(|| format!("failed to append to {}", path.display()))?;
        file.flush().await?;
        Ok(Append::Done(len + bytes.len() as u64))
    }
}

/// One file out of a zip archive; `None` when the archive has no such file.
pub fn read_zip_entry(archive: &std::path::Path, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("failed to open {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file).context("the artifacts archive is not a zip file")?;
    let mut entry = match zip.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(err) => return Err(err).context("failed to read the artifacts archive"),
    };
    if entry.is_dir() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
    entry
        .read_to_end(&mut out)
        .context("failed to extract a file from the artifacts archive")?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CiSettings;
    use crate::store::Store;

    #[tokio::test]
    async fn a_trace_is_followed_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let ci = Ci::new(store, dir.path(), CiSettings::default());
        assert!(
            ci.read_trace_from(7, 0).await.unwrap().is_empty(),
            "no trace yet"
        );
        assert_eq!(
            ci.append_trace(7, 0, b"hello ").await.unwrap(),
            Append::Done(6)
        );
        assert_eq!(
            ci.append_trace(7, 6, b"world").await.unwrap(),
            Append::Done(11)
        );
        assert_eq!(ci.read_trace_from(7, 0).await.unwrap(), b"hello world");
        assert_eq!(ci.read_trace_from(7, 6).await.unwrap(), b"world");
        assert!(ci.read_trace_from(7, 11).await.unwrap().is_empty());
        assert!(
            ci.read_trace_from(7, 99).await.unwrap().is_empty(),
            "past the end"
        );
    }
}
