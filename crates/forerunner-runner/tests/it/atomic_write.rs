//! A process killed with SIGKILL while saving config.toml leaves either the
//! old or the new file, never a torn one.
//!
//! The test re-runs this test binary as a child that saves two large
//! configurations alternately in a loop, kills it at a random moment, and
//! checks the file. `child_writer` does nothing unless the parent started it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use forerunner_runner::config::document::write_atomic;
use forerunner_runner::config::Config;

const CHILD_ENV: &str = "FORERUNNER_ATOMIC_WRITE_CHILD";
const ENTRIES: usize = 5_000;

/// A valid config of a few MiB (many entries), tagged by `marker`.
fn big_config(marker: &str) -> String {
    let mut s = format!("# {marker}\nconcurrent = 1\n");
    for i in 0..ENTRIES {
        s.push_str(&format!(
            "\n[[runners]]\n  name = \"{marker}-{i}\"\n  url = \"https://gitlab.example.com\"\n  token = \"glrt-t1_{marker}{i:012}\"\n  executor = \"shell\"\n"
        ));
    }
    s
}

#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let a = big_config("AAAA");
    let b = big_config("BBBB");
    println!("ready");
    loop {
        write_atomic(std::path::Path::new(&path), a.as_bytes()).unwrap();
        write_atomic(std::path::Path::new(&path), b.as_bytes()).unwrap();
    }
}

#[test]
fn sigkill_during_save_leaves_old_or_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let a = big_config("AAAA");
    let b = big_config("BBBB");
    std::fs::write(&path, &a).unwrap();
    let exe = std::env::current_exe().unwrap();
    for round in 0..8u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "atomic_write::child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child is about to write, however slow the machine.
        let stdout = child.stdout.take().unwrap();
        let ready = BufReader::new(stdout)
            .lines()
            .any(|l| l.is_ok_and(|l| l.contains("ready")));
        assert!(ready, "the child writer did not start");
        // Vary the moment of the kill across rounds.
        std::thread::sleep(Duration::from_millis(20 + round * 13));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text == a || text == b,
            "round {round}: torn file of {} bytes",
            text.len()
        );
    }
    let config = Config::load(&path).unwrap();
    assert_eq!(config.runners.len(), ENTRIES);
    // Killed writers leave their temp files behind: proof that the kills
    // landed in the middle of saves, not between them.
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().ends_with(".tmp")
        })
        .count();
    assert!(
        leftovers >= 1,
        "no save was interrupted; the test proves nothing"
    );
}
