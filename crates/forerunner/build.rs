//! Link settings of the `forerunner` executable that keep an idle runner
//! small. Nothing here changes what the program does.
//!
//! **Non-PIE on Linux.** A PIE is relocated at every start: the dynamic
//! loader reads all of `.rela.dyn` (~850 kB of relative relocations here) and
//! writes every page of `.data.rel.ro` (~600 kB of vtables and pointer
//! tables), which turns them into private memory. An idle `forerunner run`
//! carries both for its whole life. Linked at a fixed address, those
//! relocations are resolved by the linker and the pages stay clean and unread
//! until used: idle VmRSS 10.9 → 9.9 MB (anonymous 980 → 396 kB). The
//! official gitlab-runner (Go's default build mode) is a non-PIE executable
//! too; the cost is that the executable's own code is not address-randomised
//! (its libraries, heap and stacks still are).
//!
//! **The runner's functions first (release builds).** Most of an idle
//! runner's memory is the executable's code it has touched, and the kernel
//! maps code in 64 kB blocks around each touched page: the ~1.1 MB of
//! functions a runner runs (start-up, the long poll, the job loop) were
//! spread over ~100 of the ~145 blocks of a 9 MB `.text`, so the runner held
//! 4.8 MB of code. `link/symbol-order.txt` (written by
//! `scripts/symbol-order.sh` from a callgrind profile of the runner bench)
//! lists those functions and the linker lays them out first, side by side:
//! 1.2 MB of code held, idle VmRSS 8.3 → 4.7 MB (`cargo bench -p forerunner
//! --bench runner`). A name the executable no longer has is skipped, so a
//! stale file costs memory, never correctness; the bench prints how many of
//! its names still match.
//!
//! `--symbol-ordering-file` is an LLD option, and LLD is the linker rustc
//! uses for `x86_64-unknown-linux-gnu` from Rust 1.90 on; the option is
//! passed only there, and not when the build chooses its own linker.
//!
//! The object files stay position-independent (the Rust default): only the
//! final link of the `forerunner` binary changes, not the libraries, tests
//! or benches.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if std::env::var("PROFILE").as_deref() == Ok("release") && links_with_rustc_lld() {
        let order = concat!(env!("CARGO_MANIFEST_DIR"), "/link/symbol-order.txt");
        println!("cargo:rerun-if-changed={order}");
        // Two arguments, so that a comma in the path cannot split one.
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the final link is done by the LLD that rustc brings: the default
/// for `x86_64-unknown-linux-gnu` since Rust 1.90, unless the build names
/// its own linker or linker features.
fn links_with_rustc_lld() -> bool {
    if std::env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    // Cargo sets RUSTC_LINKER when the build configures a linker.
    if std::env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("link-self-contained") {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    // `release: 1.95.0`
    let version = String::from_utf8_lossy(&out.stdout);
    let release = version
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .and_then(|v| {
            let mut parts = v.trim().split('.');
            let major: u32 = parts.next()?.parse().ok()?;
            let minor: u32 = parts.next()?.parse().ok()?;
            Some((major, minor))
        });
    release.is_some_and(|v| v >= (1, 90))
}
