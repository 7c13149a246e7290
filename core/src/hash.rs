//! The keyed hash of service names.
//!
//! Names come from remote clients (`Check` and `Watch` requests), so the hash is keyed: each
//! registry derives two secret 64-bit keys from its seed, and every multiplication mixes a
//! key (or the running state, itself keyed) into *both* operands. Without the keys a client
//! cannot compute where a name lands, so it cannot aim names at one index cluster or one
//! wait bucket. It is a fast non-cryptographic hash in the wyhash / foldhash family (a
//! 64×64→128-bit multiply folded to 64 bits), not a PRF: it defends against names crafted
//! offline, and the docs of [`Registry`](crate::Registry) say what a fixed seed gives away.
//!
//! One `const fn` serves both `const` construction (`FixedRegistry::new` places `""`) and
//! the runtime paths, so the two can never disagree.

const P0: u64 = 0x2d35_8dcc_aa6c_78a5;
const P1: u64 = 0x8bb8_4b93_962e_acc9;
const P2: u64 = 0x4b33_a62e_d433_d4a3;
const P3: u64 = 0x4d5a_2da5_1de1_aa47;

/// The seed of registries built by `FixedRegistry::new` (a `const fn` has no entropy).
pub(crate) const FIXED_SEED: u64 = 0x6475_6262_6f2d_6865; // "dubbo-he"

/// 64×64→128-bit multiply, folded to 64 bits.
#[inline(always)]
const fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

/// The little-endian `u64` at `b[i..i + 8]` (in range: callers check the length). One load:
/// `split_at` + `first_chunk` are `const` and let the compiler see an 8-byte read.
#[inline(always)]
const fn read8(b: &[u8], i: usize) -> u64 {
    let (_, rest) = b.split_at(i);
    match rest.first_chunk::<8>() {
        Some(chunk) => u64::from_le_bytes(*chunk),
        None => 0,
    }
}

/// The little-endian `u32` at `b[i..i + 4]`, widened (in range: callers check the length).
#[inline(always)]
const fn read4(b: &[u8], i: usize) -> u64 {
    let (_, rest) = b.split_at(i);
    match rest.first_chunk::<4>() {
        Some(chunk) => u32::from_le_bytes(*chunk) as u64,
        None => 0,
    }
}

/// A registry's secret hash keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Keys {
    k0: u64,
    k1: u64,
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the keys: they are what keeps names from being aimed at one bucket.
        f.write_str("Keys(..)")
    }
}

impl Keys {
    /// Derives the keys from a seed.
    pub(crate) const fn from_seed(seed: u64) -> Self {
        let k0 = fold_mul(seed ^ P0, P1);
        let k1 = fold_mul(k0 ^ P2, seed ^ P3);
        Self { k0, k1 }
    }

    /// A fresh random seed per call (std's per-process random keys, advanced per call).
    #[cfg(feature = "std")]
    pub(crate) fn random_seed() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(0x5eed_u64)
    }

    /// Hashes a name.
    #[inline]
    pub(crate) const fn hash(&self, b: &[u8]) -> Hash {
        let len = b.len();
        let mut s = self.k0;
        let (a, c) = if len <= 16 {
            if len >= 4 {
                let off = (len >> 3) << 2;
                (
                    (read4(b, 0) << 32) | read4(b, off),
                    (read4(b, len - 4) << 32) | read4(b, len - 4 - off),
                )
            } else if len > 0 {
                (
                    ((b[0] as u64) << 16) | ((b[len >> 1] as u64) << 8) | b[len - 1] as u64,
                    0,
                )
            } else {
                (0, 0)
            }
        } else {
            let mut i = 0;
            while len - i > 16 {
                s = fold_mul(read8(b, i) ^ self.k1, read8(b, i + 8) ^ s);
                i += 16;
            }
            (read8(b, len - 16), read8(b, len - 8))
        };
        Hash(fold_mul(self.k1 ^ len as u64, fold_mul(a ^ self.k1, c ^ s)))
    }
}

/// A name's 64-bit hash, and the parts of it each structure uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Hash(pub(crate) u64);

impl Hash {
    /// The high 32 bits: choose the name's home index position (and so its wait bucket),
    /// and are stored in its slot and in its watchers' wait nodes as a fingerprint.
    #[inline(always)]
    pub(crate) const fn hi(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Eight bits independent of [`hi`](Self::hi), kept in the index word to reject most
    /// other names without reading their slots.
    #[inline(always)]
    pub(crate) const fn tag(self) -> u32 {
        (self.0 as u32) >> 24
    }
}
