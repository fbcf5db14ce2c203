//! [`python_with_gitlab`]: a Python with python-gitlab for compatibility
//! tests.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// How long to wait for another test process that is creating the venv.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// A Python interpreter that can `import gitlab`.
///
/// `FORERUNNER_TEST_PYTHON` wins when set. Otherwise a venv at
/// `<workspace>/.venv` is used, created with `python3 -m venv` and filled
/// with `pip install -r .ci/python-requirements.txt` (the versions `.ci/run`
/// pins; plain `python-gitlab` without that file) when missing; a lock file
/// (`<workspace>/.venv.lock`) keeps parallel tests from creating it twice.
pub fn python_with_gitlab() -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os("FORERUNNER_TEST_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .context("failed to find the workspace root")?
        .to_path_buf();
    let venv = root.join(".venv");
    let python = venv.join("bin").join("python");
    if imports_gitlab(&python) {
        return Ok(python);
    }
    let lock_path = root.join(".venv.lock");
    let started = Instant::now();
    loop {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(_) => break,
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                if imports_gitlab(&python) {
                    return Ok(python);
                }
                if started.elapsed() > LOCK_TIMEOUT {
                    bail!(
                        "timed out waiting for {} (remove it if no test is creating the venv)",
                        lock_path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("failed to create {}", lock_path.display()))
            }
        }
    }
    let result = create_venv(&venv, &python, &root.join(".ci/python-requirements.txt"));
    let _ = std::fs::remove_file(&lock_path);
    result?;
    Ok(python)
}

fn imports_gitlab(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import gitlab"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn create_venv(venv: &Path, python: &Path, requirements: &Path) -> anyhow::Result<()> {
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(venv)).context(
            "failed to create the python venv (is python3 with the venv module installed?)",
        )?;
    }
    // The same pinned versions as `.ci/run` when the file exists.
    let mut pip = Command::new(python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    if requirements.exists() {
        pip.arg("-r").arg(requirements);
    } else {
        pip.arg("python-gitlab");
    }
    run(&mut pip).context("failed to install python-gitlab into the venv (is PyPI reachable?)")?;
    if !imports_gitlab(python) {
        bail!("python-gitlab was installed but `import gitlab` still fails");
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
