//! Links the `forerunner` executable as a position-dependent (non-PIE)
//! executable on Linux.
//!
//! A PIE is relocated at every start: the dynamic loader reads all of
//! `.rela.dyn` (~850 kB of relative relocations here) and writes every page
//! of `.data.rel.ro` (~600 kB of vtables and pointer tables), which turns
//! them into private memory. An idle `forerunner run` carries both for its
//! whole life. Linked at a fixed address, those relocations are resolved by
//! the linker and the pages stay clean and unread until used: idle VmRSS
//! 10.9 → 9.9 MB (anonymous 980 → 396 kB). The official gitlab-runner (Go's
//! default build mode) is a non-PIE executable too; the cost is that the
//! executable's own code is not address-randomised (its libraries, heap and
//! stacks still are).
//!
//! The object files stay position-independent (the Rust default): only the
//! final link of the `forerunner` binary changes, not the libraries, tests
//! or benches.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
