//! Small local images for tests: no registry is reachable where Forerunner is tested, so tests
//! build their own images from Debian's `busybox-static` package.
//!
//! [`ensure_test_images`] imports two images through the Engine API (`POST /images/create` with a
//! root filesystem tarball, like `docker import`): [`BUSYBOX_IMAGE`] and [`BUSYBOX_ALT_IMAGE`].
//! Each holds a static `/bin/busybox` with every applet linked at its usual path (`/bin/sh`,
//! `/usr/bin/wget`, `/usr/sbin/httpd`, …), `/tmp`, `/root`, `/etc/passwd` and `/etc/group` with
//! `root` and `nobody`, and the marker file [`IMAGE_MARKER`] holding the image's own name, so a
//! test can tell which image a script ran in.
//!
//! The busybox binary comes from, in order: the `FORERUNNER_BUSYBOX` environment variable (a path
//! to a *static* busybox), a copy cached by an earlier run under the system temp directory, or
//! `apt-get download busybox-static` (with `apt-get update` first if the package is unknown) and
//! `dpkg-deb -x`. This is test support, not runner code: nothing in the runner calls it.

use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::StreamExt;

use crate::executors::docker::{Engine, EngineError};

/// The plain test image.
pub const BUSYBOX_IMAGE: &str = "forerunner-test/busybox:latest";
/// A second, distinct test image (its marker file differs).
pub const BUSYBOX_ALT_IMAGE: &str = "forerunner-test/busybox-alt:latest";
/// The file in each test image that holds the image's name.
pub const IMAGE_MARKER: &str = "/etc/forerunner-image";
/// The environment variable naming a static busybox binary to use instead of downloading one.
pub const BUSYBOX_ENV: &str = "FORERUNNER_BUSYBOX";

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the test images could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestImageError {
    /// No static busybox binary could be found or fetched.
    #[error("failed to get a static busybox for the test images: {0}")]
    Busybox(String),
    /// Building the root filesystem tarball failed.
    #[error("failed to build the test image root filesystem: {0}")]
    Rootfs(#[from] std::io::Error),
    /// The Engine API refused the import.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Makes sure [`BUSYBOX_IMAGE`] and [`BUSYBOX_ALT_IMAGE`] exist, importing the missing ones.
/// Idempotent, and only two `inspect` calls when both images exist. Calls are serialised within
/// a process by a mutex and across processes (cargo nextest) by a lock file, so that the images
/// are imported once.
pub async fn ensure_test_images(engine: &Engine) -> Result<(), TestImageError> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _guard = LOCK.lock().await;
    if missing_images(engine).await?.is_empty() {
        return Ok(());
    }
    let _file_lock = ImportLock::acquire(&cache_dir()).await?;
    let missing = missing_images(engine).await?; // Another process may have imported them.
    if missing.is_empty() {
        return Ok(());
    }
    let busybox = tokio::task::spawn_blocking(find_or_fetch_busybox)
        .await
        .map_err(|e| TestImageError::Busybox(format!("the fetching task failed: {e}")))??;
    for image in missing {
        let rootfs = {
            let busybox = busybox.clone();
            let image = image.to_owned();
            tokio::task::spawn_blocking(move || rootfs_tar(&busybox, &image))
                .await
                .map_err(|e| std::io::Error::other(format!("the tar task failed: {e}")))??
        };
        import(engine, image, rootfs).await?;
        tracing::info!(image, "imported test image");
    }
    Ok(())
}

async fn missing_images(engine: &Engine) -> Result<Vec<&'static str>, EngineError> {
    let mut missing = Vec::new();
    for image in [BUSYBOX_IMAGE, BUSYBOX_ALT_IMAGE] {
        if !engine.image_exists(image).await? {
            missing.push(image);
        }
    }
    Ok(missing)
}

/// Where the busybox binary and the import lock are kept between runs.
fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("forerunner-test-images")
}

/// A lock file held while importing; removed on drop. A lock older than a minute is taken to be
/// left by a killed process and broken.
struct ImportLock(PathBuf);

impl ImportLock {
    async fn acquire(dir: &Path) -> Result<Self, TestImageError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("import.lock");
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > std::time::Duration::from_secs(60));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                    } else {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for ImportLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Imports `rootfs` (an uncompressed tar) as `image` (`repo:tag`).
async fn import(engine: &Engine, image: &str, rootfs: Vec<u8>) -> Result<(), EngineError> {
    let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(tag)
        .message("forerunner test image")
        .changes(vec![format!("ENV PATH={PATH}"), "CMD [\"sh\"]".to_owned()])
        .build();
    let mut progress =
        engine
            .docker()
            .create_image(Some(options), Some(bollard::body_full(rootfs.into())), None);
    while let Some(item) = progress.next().await {
        item.map_err(|e| EngineError::api(format!("import test image {image}"), e))?;
    }
    Ok(())
}

/// The path of a static busybox: from [`BUSYBOX_ENV`], the cache, or Debian's package.
fn find_or_fetch_busybox() -> Result<PathBuf, TestImageError> {
    if let Some(path) = std::env::var_os(BUSYBOX_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(TestImageError::Busybox(format!(
                "{BUSYBOX_ENV}={} is not a file",
                path.display()
            )))
        };
    }
    let cache = cache_dir();
    let cached = cache.join("busybox");
    if cached.is_file() {
        return Ok(cached);
    }
    std::fs::create_dir_all(&cache)
        .map_err(|e| TestImageError::Busybox(format!("cannot create {}: {e}", cache.display())))?;
    // Per process: several test processes may fetch at once (cargo nextest).
    let download = cache.join(format!("download.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).map_err(|e| {
        TestImageError::Busybox(format!("cannot create {}: {e}", download.display()))
    })?;
    if run(
        Command::new("apt-get").args(["download", "busybox-static"]),
        &download,
    )
    .is_err()
    {
        run(Command::new("apt-get").args(["update", "-qq"]), &download)?;
        run(
            Command::new("apt-get").args(["download", "busybox-static"]),
            &download,
        )?;
    }
    let deb = std::fs::read_dir(&download)
        .map_err(|e| TestImageError::Busybox(format!("cannot list {}: {e}", download.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| {
            TestImageError::Busybox("apt-get download busybox-static left no .deb".to_owned())
        })?;
    let extracted = download.join("x");
    run(
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&extracted),
        &download,
    )?;
    // Rename into place so that a concurrent run never sees a half-written binary.
    let partial = cache.join(format!("busybox.{}", std::process::id()));
    std::fs::copy(extracted.join("bin/busybox"), &partial)
        .and_then(|_| std::fs::rename(&partial, &cached))
        .map_err(|e| {
            TestImageError::Busybox(format!("cannot cache busybox at {}: {e}", cached.display()))
        })?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(cached)
}

/// Runs a helper command in `dir`, turning failure into a message with its stderr.
fn run(cmd: &mut Command, dir: &Path) -> Result<(), TestImageError> {
    let shown = format!("{cmd:?}");
    let out = cmd.current_dir(dir).output().map_err(|e| {
        TestImageError::Busybox(format!(
            "cannot run {shown}: {e} (install apt and dpkg, or set {BUSYBOX_ENV})"
        ))
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestImageError::Busybox(format!(
            "{shown} failed ({}): {} (set {BUSYBOX_ENV} to a static busybox to skip the download)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// The root filesystem of a test image named `image`, as an uncompressed tar.
fn rootfs_tar(busybox: &Path, image: &str) -> std::io::Result<Vec<u8>> {
    let list = Command::new(busybox).arg("--list-full").output()?;
    if !list.status.success() {
        return Err(std::io::Error::other(format!(
            "{} --list-full failed: {}",
            busybox.display(),
            list.status
        )));
    }
    let applets = String::from_utf8_lossy(&list.stdout).into_owned();
    let binary = std::fs::read(busybox)?;

    let marker = format!("{image}\n");

    let mut tar = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin", 0o755),
        ("sbin", 0o755),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("etc", 0o755),
        ("root", 0o700),
        ("tmp", 0o1777),
    ] {
        let mut h = header(tar::EntryType::Directory, mode, 0);
        tar.append_data(&mut h, dir, std::io::empty())?;
    }
    let files: [(&str, u32, &[u8]); 4] = [
        ("bin/busybox", 0o755, &binary),
        (
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n"),
        ("etc/forerunner-image", 0o644, marker.as_bytes()),
    ];
    for (path, mode, data) in files {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        tar.append_data(&mut h, path, data)?;
    }
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        tar.append_link(&mut h, applet, "/bin/busybox")?;
    }
    tar.into_inner()
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}
