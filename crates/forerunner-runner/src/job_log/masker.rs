//! Streaming masking of secrets in job output, before any byte leaves the
//! runner.
//!
//! Three kinds of secret are replaced by `[MASKED]`, as the official runner
//! does:
//! - the values of masked variables (whitespace-trimmed, deduplicated, the
//!   longest first when several match at one place);
//! - the run of token characters (`[A-Za-z0-9-._=]`) after a GitLab token
//!   prefix such as `glpat-` or `glrt-` (the prefix itself stays visible);
//! - the values of sensitive URL parameters (`private_token=…`, …).
//!
//! The masker is correct across write boundaries: a secret split over any
//! number of writes (down to one byte each) is masked exactly as if it had
//! been written at once. To do that it holds back the shortest tail of the
//! input that could still be the start of a secret, and releases it as soon
//! as the next write (or [`Masker::finish`]) decides it.

use forerunner_protocol::tokens::SENSITIVE_PREFIXES;

/// What replaces a secret.
pub const MASK: &[u8] = b"[MASKED]";

/// URL parameters whose values are secrets.
const SENSITIVE_PARAMS: &[&str] = &[
    "private_token=",
    "authenticity_token=",
    "rss_token=",
    "x-amz-signature=",
    "x-amz-credential=",
    "x-amz-security-token=",
];

/// Bytes that continue a token after its prefix.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'=')
}

/// Bytes that continue a URL parameter value.
fn is_param_byte(b: u8) -> bool {
    !(b.is_ascii_whitespace() || matches!(b, b'&' | b'#' | b'"' | b'\'' | b'<' | b'>'))
}

/// A secret run whose end has not been seen yet: everything up to the first
/// byte outside the run is swallowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swallow {
    Token,
    Param,
}

/// A prefix (token prefix or URL parameter) followed by a secret run.
#[derive(Debug, Clone)]
struct Prefix {
    bytes: Vec<u8>,
    kind: Swallow,
    /// URL parameter names match case-insensitively.
    ignore_case: bool,
}

impl Prefix {
    /// Length of the common start of `self` and `input` (case-folded when
    /// the prefix ignores case).
    fn matched(&self, input: &[u8]) -> usize {
        self.bytes
            .iter()
            .zip(input)
            .take_while(|(p, i)| {
                if self.ignore_case {
                    p.eq_ignore_ascii_case(i)
                } else {
                    p == i
                }
            })
            .count()
    }

    fn continues(&self, b: u8) -> bool {
        match self.kind {
            Swallow::Token => is_token_byte(b),
            Swallow::Param => is_param_byte(b),
        }
    }
}

/// A streaming masker. Feed output with [`Masker::write`], emit what it
/// returns, and call [`Masker::finish`] at the end of the stream.
#[derive(Debug, Clone)]
pub struct Masker {
    /// Masked values, longest first.
    phrases: Vec<Vec<u8>>,
    prefixes: Vec<Prefix>,
    /// Input held back because it may start a secret.
    pending: Vec<u8>,
    /// Inside a secret run whose end has not arrived yet.
    swallowing: Option<Swallow>,
}

/// How a secret run ends within the bytes available.
enum RunEnd {
    At(usize),
    Open,
}

impl Masker {
    /// A masker for the given masked values and extra token prefixes (those
    /// of the job's `features.token_mask_prefixes`); GitLab's own token
    /// prefixes and sensitive URL parameters are always masked.
    pub fn new<I, S, P, Q>(masked_values: I, extra_prefixes: P) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
        P: IntoIterator<Item = Q>,
        Q: AsRef<str>,
    {
        let mut phrases: Vec<Vec<u8>> = masked_values
            .into_iter()
            .map(|v| v.as_ref().trim().as_bytes().to_vec())
            .filter(|v| !v.is_empty())
            .collect();
        phrases.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        phrases.dedup();

        let mut prefixes: Vec<Prefix> = Vec::new();
        let mut add = |bytes: &[u8], kind, ignore_case| {
            if !bytes.is_empty() && !prefixes.iter().any(|p| p.bytes == bytes) {
                prefixes.push(Prefix {
                    bytes: bytes.to_vec(),
                    kind,
                    ignore_case,
                });
            }
        };
        for p in SENSITIVE_PREFIXES {
            add(p.as_bytes(), Swallow::Token, false);
        }
        for p in extra_prefixes {
            add(p.as_ref().trim().as_bytes(), Swallow::Token, false);
        }
        for p in SENSITIVE_PARAMS {
            add(p.as_bytes(), Swallow::Param, true);
        }
        // Longest prefix first, so `glrtr-` wins over `glrt-`.
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.bytes.len()));
        Self {
            phrases,
            prefixes,
            pending: Vec::new(),
            swallowing: None,
        }
    }

    /// Masks `input` and returns the bytes that are now safe to emit. Bytes
    /// that could still be the start of a secret are kept for the next call.
    pub fn write(&mut self, input: &[u8]) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(input);
        let mut out = Vec::with_capacity(buf.len());
        let held = self.scan(&buf, false, &mut out);
        self.pending = buf[held..].to_vec();
        out
    }

    /// Masks and returns everything still held back; the stream is over.
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(buf.len());
        let held = self.scan(&buf, true, &mut out);
        debug_assert_eq!(held, buf.len());
        self.swallowing = None;
        out
    }

    /// Scans `buf`, appending masked output to `out`; returns the offset
    /// from which input must be held back (`buf.len()` when nothing is).
    fn scan(&mut self, buf: &[u8], last: bool, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        if let Some(kind) = self.swallowing {
            let probe = Prefix {
                bytes: Vec::new(),
                kind,
                ignore_case: false,
            };
            match Self::run_end(&probe, buf, 0) {
                RunEnd::At(end) => {
                    self.swallowing = None;
                    i = end;
                }
                RunEnd::Open => {
                    if last {
                        self.swallowing = None;
                    }
                    return buf.len();
                }
            }
        }
        'scan: while i < buf.len() {
            let rest = &buf[i..];
            // Masked values: a full match is replaced; a partial match at the
            // end of the input is held back unless the stream is over.
            let mut partial = false;
            for phrase in &self.phrases {
                if rest.starts_with(phrase) {
                    out.extend_from_slice(MASK);
                    i += phrase.len();
                    continue 'scan;
                }
                if !last && rest.len() < phrase.len() && phrase.starts_with(rest) {
                    partial = true;
                }
            }
            // Token prefixes and URL parameters: the prefix stays, the run
            // after it is replaced.
            for prefix in &self.prefixes {
                let n = prefix.matched(rest);
                if n == prefix.bytes.len() {
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(MASK);
                    match Self::run_end(prefix, buf, i + n) {
                        RunEnd::At(end) => i = end,
                        RunEnd::Open => {
                            if !last {
                                self.swallowing = Some(prefix.kind);
                            }
                            return buf.len();
                        }
                    }
                    continue 'scan;
                }
                if !last && n == rest.len() {
                    partial = true;
                }
            }
            if partial {
                return i;
            }
            out.push(buf[i]);
            i += 1;
        }
        buf.len()
    }

    /// Where the secret run of `prefix` starting at `from` ends in `buf`.
    fn run_end(prefix: &Prefix, buf: &[u8], from: usize) -> RunEnd {
        match buf[from..].iter().position(|&b| !prefix.continues(b)) {
            Some(n) => RunEnd::At(from + n),
            None => RunEnd::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask_all(m: &mut Masker, chunks: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.write(c));
        }
        out.extend(m.finish());
        String::from_utf8(out).unwrap()
    }

    fn masker(values: &[&str]) -> Masker {
        Masker::new(values.iter().copied(), std::iter::empty::<&str>())
    }

    #[test]
    fn masks_whole_values() {
        let mut m = masker(&["s3cr3t-value"]);
        assert_eq!(
            mask_all(&mut m, &[b"echo s3cr3t-value done\n"]),
            "echo [MASKED] done\n"
        );
    }

    #[test]
    fn masks_values_split_at_every_byte() {
        let text = b"a=s3cr3t-value b=s3cr3t-value\nend";
        for split in 1..text.len() {
            let mut m = masker(&["s3cr3t-value"]);
            let got = mask_all(&mut m, &[&text[..split], &text[split..]]);
            assert_eq!(got, "a=[MASKED] b=[MASKED]\nend", "split at {split}");
        }
        let mut m = masker(&["s3cr3t-value"]);
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(mask_all(&mut m, &chunks), "a=[MASKED] b=[MASKED]\nend");
    }

    #[test]
    fn near_misses_are_released() {
        let mut m = masker(&["secret"]);
        let mut out = m.write(b"the sec");
        assert_eq!(out, b"the ");
        out.extend(m.write(b"ond line"));
        out.extend(m.finish());
        assert_eq!(out, b"the second line");
        let mut m = masker(&["secret"]);
        assert_eq!(mask_all(&mut m, &[b"ends with sec"]), "ends with sec");
    }

    #[test]
    fn longest_value_first_and_trimmed() {
        let mut m = masker(&["abc", " abcdef \n", "", "abc"]);
        assert_eq!(
            mask_all(&mut m, &[b"abcdef abc ab"]),
            "[MASKED] [MASKED] ab"
        );
    }

    #[test]
    fn masks_token_prefixes_keeping_the_prefix() {
        let mut m = masker(&[]);
        assert_eq!(
            mask_all(&mut m, &[b"token glpat-AbC_123.x=y done"]),
            "token glpat-[MASKED] done"
        );
        let mut m = masker(&[]);
        assert_eq!(
            mask_all(&mut m, &[b"glrt-t3_", b"abc", b"def", b" end glrtr-zz"]),
            "glrt-[MASKED] end glrtr-[MASKED]"
        );
    }

    #[test]
    fn masks_extra_prefixes_and_url_params() {
        let mut m = Masker::new(std::iter::empty::<&str>(), ["mytok-"]);
        assert_eq!(
            mask_all(
                &mut m,
                &[b"mytok-123 https://x/?a=1&PRIVATE_TOKEN=abc%2F&b=2"]
            ),
            "mytok-[MASKED] https://x/?a=1&PRIVATE_TOKEN=[MASKED]&b=2"
        );
    }

    #[test]
    fn token_split_at_every_byte() {
        let text = b"x glcbt-64_abcdefghij y glpat-q\n";
        for split in 1..text.len() {
            let mut m = masker(&[]);
            let got = mask_all(&mut m, &[&text[..split], &text[split..]]);
            assert_eq!(
                got, "x glcbt-[MASKED] y glpat-[MASKED]\n",
                "split at {split}"
            );
        }
    }

    #[test]
    fn nothing_held_without_a_possible_secret() {
        let mut m = masker(&["zzz"]);
        assert_eq!(m.write(b"plain text"), b"plain text");
        assert!(m.finish().is_empty());
    }

    /// Any chunking of any text gives the same output as one write: a
    /// deterministic pseudo-random sweep over texts dense with secrets.
    #[test]
    fn chunking_never_changes_the_output() {
        let alphabet: &[&[u8]] = &[
            b"s3cr",
            b"3t",
            b"glp",
            b"at-",
            b"x",
            b" ",
            b"\n",
            b"s3cr3t",
            b"glrt-t1_",
            b"&",
            b"private_token=",
            b"ab",
            b"=",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..2000 {
            let mut text = Vec::new();
            for _ in 0..next(30) {
                text.extend_from_slice(alphabet[next(alphabet.len())]);
            }
            let mut one = masker(&["s3cr3t", "3t s3"]);
            let expected = mask_all(&mut one, &[&text]);
            let mut chunks = Vec::new();
            let mut rest = &text[..];
            while !rest.is_empty() {
                let n = 1 + next(rest.len());
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            let mut m = masker(&["s3cr3t", "3t s3"]);
            assert_eq!(
                mask_all(&mut m, &chunks),
                expected,
                "text {:?}",
                String::from_utf8_lossy(&text)
            );
            assert!(!expected.contains("s3cr3t"), "leaked in {expected:?}");
        }
    }
}
