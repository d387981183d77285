//! The byte-mutation engine: small random edits of a seed, as a fuzzer
//! makes them, driven by a tiny deterministic PRNG.
//!
//! Guarantees: the same [`Rng`] state and inputs give the same output (a run
//! is reproducible from its seed); an output never exceeds [`MAX_LEN`]
//! bytes; every operation works on any input, including the empty one.
//!
//! The operations are the classic ones: flip a bit, set a byte to an
//! "interesting" value (a delimiter, a UTF-8 lead byte, `%`, `\n`…), insert
//! or delete a run, duplicate a run, swap two runs, splice with another
//! input, insert a token from the target's dictionary (`"type":"BOOKMARK"`,
//! `-----BEGIN CERTIFICATE-----`, `%2F`…), replace a number by an extreme
//! one, and truncate. One to five of them are stacked per case.

/// The largest input the engine produces.
pub const MAX_LEN: usize = 64 * 1024;

/// A SplitMix64 generator: fast, tiny, and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: usize, den: usize) -> bool {
        self.below(den) < num
    }
}

/// FNV-1a of `bytes`: a stable hash to name saved inputs and to derive
/// per-input choices (like chunk boundaries) reproducibly.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

const INTERESTING_BYTES: &[u8] = &[
    0x00, 0xff, 0x7f, 0x80, 0xc0, 0xc3, 0xe2, 0xf0, 0xf4, 0xf8, b'\n', b'\r', b'\t', b' ', b'"',
    b'\\', b'{', b'}', b'[', b']', b':', b',', b'%', b'/', b'.', b'-', b'#', b'&', b'*', b'!',
    b'|', b'>', b'\'', b'=', b'0', b'9',
];

const EXTREME_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "65536",
    "9223372036854775808",
    "18446744073709551616",
    "1e400",
    "-1e-400",
    "0.5",
    "1E+2",
    "99999999999999999999999999999",
];

/// Returns a mutation of `input`; `other` is another input to splice with
/// and `dictionary` the target's tokens.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(5);
    for _ in 0..rounds {
        mutate_once(rng, &mut out, other, dictionary);
        out.truncate(MAX_LEN);
    }
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8], dictionary: &[&[u8]]) {
    let len = out.len();
    match rng.below(12) {
        // Flip one bit.
        0 if len > 0 => {
            let at = rng.below(len);
            out[at] ^= 1 << rng.below(8);
        }
        // Set a byte to an interesting value.
        1 if len > 0 => {
            let at = rng.below(len);
            out[at] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        // Insert an interesting or random byte.
        2 => {
            let at = rng.below(len + 1);
            let b = if rng.chance(1, 2) {
                INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())]
            } else {
                rng.next_u64() as u8
            };
            out.insert(at, b);
        }
        // Delete a run.
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(32));
            out.drain(at..at + n);
        }
        // Duplicate a run (possibly many times: repetition finds limits).
        4 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let run = out[at..at + n].to_vec();
            let times = if rng.chance(1, 8) {
                1 + rng.below(64)
            } else {
                1
            };
            let dest = rng.below(len + 1);
            for _ in 0..times {
                out.splice(dest..dest, run.iter().copied());
            }
        }
        // Swap two runs of the same length.
        5 if len > 1 => {
            let n = 1 + rng.below(len / 2).min(16);
            let a = rng.below(len - n + 1);
            let b = rng.below(len - n + 1);
            if a + n <= b || b + n <= a {
                for i in 0..n {
                    out.swap(a + i, b + i);
                }
            }
        }
        // Splice: a prefix of this input, a suffix of the other.
        6 if !other.is_empty() => {
            let cut_self = rng.below(len + 1);
            let cut_other = rng.below(other.len());
            out.truncate(cut_self);
            out.extend_from_slice(&other[cut_other..]);
        }
        // Insert (or overwrite with) a dictionary token.
        7 | 8 if !dictionary.is_empty() => {
            let token = dictionary[rng.below(dictionary.len())];
            let at = rng.below(len + 1);
            if rng.chance(1, 3) && at < len {
                let end = (at + token.len()).min(len);
                out.splice(at..end, token.iter().copied());
            } else {
                out.splice(at..at, token.iter().copied());
            }
        }
        // Replace a run of digits with an extreme number.
        9 => {
            if let Some(start) = pick_digit_run(rng, out) {
                let end = start
                    + out[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                let n = EXTREME_NUMBERS[rng.below(EXTREME_NUMBERS.len())];
                out.splice(start..end, n.bytes());
            }
        }
        // Truncate.
        10 if len > 0 => {
            out.truncate(rng.below(len));
        }
        // Insert a short random run.
        _ => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let run: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            out.splice(at..at, run);
        }
    }
}

fn pick_digit_run(rng: &mut Rng, bytes: &[u8]) -> Option<usize> {
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()))
        .collect();
    (!starts.is_empty()).then(|| starts[rng.below(starts.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_deterministic_and_bounded() {
        let dict: &[&[u8]] = &[b"%2F", b"\n"];
        let seed = b"{\"type\":\"ADDED\",\"object\":{\"n\":12}}".repeat(10);
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut changed = 0;
        for _ in 0..2000 {
            let x = mutate(&mut a, &seed, b"other", dict);
            let y = mutate(&mut b, &seed, b"other", dict);
            assert_eq!(x, y);
            assert!(x.len() <= MAX_LEN);
            changed += usize::from(x != seed);
        }
        assert!(
            changed > 1800,
            "only {changed} of 2000 mutations changed the input"
        );
        // The empty input is handled.
        for _ in 0..200 {
            let _ = mutate(&mut a, b"", b"", &[]);
        }
    }
}
