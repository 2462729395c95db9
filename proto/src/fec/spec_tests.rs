//! The code of SPEC §5.2, read literally and checked against the
//! [`Encoder`]: field arithmetic by shift and XOR (no tables), the
//! Vandermonde matrix and its inverse by Gauss-Jordan elimination, parity
//! as a sum of products. Slow and plain on purpose: it is the text an
//! independent implementation would start from. Then the same parity from
//! `reed-solomon-erasure`, the classic crate of this construction.

use super::{Decoder, Encoder, MAX_K, MAX_M};

/// x^8 + x^4 + x^3 + x^2 + 1.
const POLY: u16 = 0x11d;

/// Product in GF(2^8) modulo [`POLY`], by shift and add.
fn mul(a: u8, b: u8) -> u8 {
    let (mut a, mut b, mut product) = (u16::from(a), b, 0u16);
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        a <<= 1;
        if a & 0x100 != 0 {
            a ^= POLY;
        }
        b >>= 1;
    }
    product as u8
}

/// `a^e`, with `0^0 = 1`.
fn pow(a: u8, e: usize) -> u8 {
    (0..e).fold(1, |acc, _| mul(acc, a))
}

/// The inverse of a non-zero element, found by search.
fn inv(a: u8) -> u8 {
    (1..=255).find(|&b| mul(a, b) == 1).expect("non-zero")
}

/// The inverse of a square matrix, by Gauss-Jordan elimination.
fn invert(mut a: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let n = a.len();
    let mut out: Vec<Vec<u8>> = (0..n)
        .map(|r| (0..n).map(|c| u8::from(r == c)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r][col] != 0).expect("invertible");
        a.swap(col, pivot);
        out.swap(col, pivot);
        let scale = inv(a[col][col]);
        for c in 0..n {
            a[col][c] = mul(a[col][c], scale);
            out[col][c] = mul(out[col][c], scale);
        }
        for r in 0..n {
            let factor = a[r][col];
            if r == col || factor == 0 {
                continue;
            }
            for c in 0..n {
                a[r][c] ^= mul(factor, a[col][c]);
                out[r][c] ^= mul(factor, out[col][c]);
            }
        }
    }
    out
}

/// Rows `k .. k + m` of `E = V · T^-1`: the parity rows.
fn parity_rows(k: usize, m: usize) -> Vec<Vec<u8>> {
    let v: Vec<Vec<u8>> = (0..k + m)
        .map(|r| (0..k).map(|c| pow(r as u8, c)).collect())
        .collect();
    let t_inv = invert(v[..k].to_vec());
    v[k..]
        .iter()
        .map(|row| {
            (0..k)
                .map(|c| (0..k).fold(0, |acc, i| acc ^ mul(row[i], t_inv[i][c])))
                .collect()
        })
        .collect()
}

/// Parity symbols as SPEC §5.2 defines them.
fn spec_parity(data: &[Vec<u8>], m: usize) -> Vec<Vec<u8>> {
    let len = data[0].len();
    parity_rows(data.len(), m)
        .iter()
        .map(|row| {
            (0..len)
                .map(|b| {
                    row.iter()
                        .zip(data)
                        .fold(0, |acc, (&e, d)| acc ^ mul(e, d[b]))
                })
                .collect()
        })
        .collect()
}

/// `k` symbols of `len` bytes, different per `k` and symbol.
fn data(k: usize, len: usize) -> Vec<Vec<u8>> {
    (0..k)
        .map(|i| {
            (0..len)
                .map(|b| (b * 7 + i * 31 + k * 13 + 1) as u8)
                .collect()
        })
        .collect()
}

fn encode(encoder: &mut Encoder, data: &[Vec<u8>], m: usize) -> Vec<Vec<u8>> {
    let mut parity = Vec::new();
    encoder
        .encode(data, m, |_, p| parity.push(p.to_vec()))
        .expect("valid block");
    parity
}

#[test]
fn field_examples_in_the_spec_hold() {
    assert_eq!(mul(2, 128), 0x1d);
    assert_eq!(mul(3, 3), 5);
    // A.3's k 2, m 2 rows.
    assert_eq!(parity_rows(2, 2), [[3, 2], [2, 3]]);
}

#[test]
fn encoder_computes_the_spec_code_for_every_shape() {
    let mut encoder = Encoder::new();
    for k in 1..=MAX_K {
        let data = data(k, 6);
        // Row k + j does not depend on m: one reading per k covers all m.
        let expected = spec_parity(&data, MAX_M);
        for m in 1..=MAX_M {
            assert_eq!(encode(&mut encoder, &data, m), expected[..m], "k {k} m {m}");
        }
    }
}

#[test]
fn decoder_inverts_the_spec_code() {
    // Parity from the literal reading, every data symbol lost that the
    // block can lose, rebuilt by the decoder.
    let mut decoder = Decoder::new();
    for (k, m) in [(1, 1), (2, 2), (16, 4), (64, 16)] {
        let data = data(k, 8);
        let parity = spec_parity(&data, m);
        let lost = k.min(m);
        let mut restored = Vec::new();
        decoder
            .decode(
                k,
                m,
                8,
                data.iter().enumerate().skip(lost),
                parity.iter().enumerate(),
                |i, s| restored.push((i, s.to_vec())),
            )
            .expect("recoverable");
        let expected: Vec<_> = data[..lost].iter().cloned().enumerate().collect();
        assert_eq!(restored, expected, "k {k} m {m}");
    }
}

#[test]
fn parity_is_reed_solomon_erasures() {
    let mut encoder = Encoder::new();
    for (k, m) in [(1, 1), (2, 2), (8, 2), (16, 4), (17, 3), (32, 8), (64, 16)] {
        let data = data(k, 1328);
        let mut parity = vec![vec![0u8; 1328]; m];
        reed_solomon_erasure::galois_8::ReedSolomon::new(k, m)
            .expect("shape")
            .encode_sep(&data, &mut parity)
            .expect("encode");
        assert_eq!(encode(&mut encoder, &data, m), parity, "k {k} m {m}");
    }
}
