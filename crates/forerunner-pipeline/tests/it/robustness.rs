//! A libFuzzer-free robustness check that runs with `cargo test`: every
//! golden input is truncated and mutated, and compiling and planning the
//! result must not panic. The real fuzzing lives in `fuzz/`; this keeps
//! the invariant checked in ordinary CI.

use std::fs;
use std::path::Path;

use forerunner_pipeline::{compile, plan, render, NoFiles, PlanInput};

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPLICES: &[&str] = &[
    "\n",
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "<<: *a\n",
    "!reference [",
    "$X == \"y\"",
    " =~ /",
    "/i",
    "extends: ",
    "needs: [",
    "parallel: ",
    "matrix:\n  - A: [1, 2]\n",
    "rules:\n  - if: ",
    "\"",
    "'",
    "#",
    "  ",
    "\t",
    "null",
    "when: delayed\n",
    "start_in: 1h",
    "include: x.yml\n",
];

fn exercise(text: &str) {
    let compiled = compile(".gitlab-ci.yml", text, &NoFiles);
    for d in &compiled.diagnostics {
        let _ = d.to_string();
    }
    if let Some(model) = &compiled.model {
        for input in [PlanInput::branch("main"), PlanInput::tag("v1.0.0")] {
            let _ = render::report(&plan(model, &input));
        }
    }
}

#[test]
fn golden_inputs_survive_truncation_and_mutation() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut inputs = Vec::new();
    for dir in ["ok", "err"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml") {
                inputs.push(fs::read_to_string(path).unwrap());
            }
        }
    }
    for text in &inputs {
        let chars: Vec<char> = text.chars().collect();
        // Truncations at a spread of positions.
        for cut in (0..chars.len()).step_by(chars.len() / 12 + 1) {
            exercise(&chars[..cut].iter().collect::<String>());
        }
        // Random splices and deletions.
        for _ in 0..20 {
            let mut mutated = chars.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(mutated.len() + 1);
                if rng.below(2) == 0 && at < mutated.len() {
                    let len = rng.below(8).min(mutated.len() - at);
                    mutated.drain(at..at + len);
                } else {
                    let splice = SPLICES[rng.below(SPLICES.len())];
                    mutated.splice(at..at, splice.chars());
                }
            }
            exercise(&mutated.iter().collect::<String>());
        }
    }
}
