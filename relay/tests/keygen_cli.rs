//! `shoal keygen` as an operator runs it: a private key file, the stream id
//! on stdout, and no overwriting of an existing key.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-keygen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn keygen(out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(["keygen", "--out"])
        .arg(out)
        .output()
        .expect("run shoal keygen")
}

#[test]
fn keygen_writes_a_private_key_and_prints_the_stream_id() {
    let dir = scratch("new");
    let path = dir.join("stream.key");
    let out = keygen(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).expect("utf8");
    let id = id.trim_end();
    assert_eq!(id.len(), 52, "{id:?}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");

    let mode = std::fs::metadata(&path).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).expect("key");
    assert_eq!(text.len(), 65);
    assert!(text.ends_with('\n'));
    assert!(
        text.trim_end()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    // The stored seed gives the printed id back.
    let seed: [u8; 32] =
        core::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"));
    let key = shoal_proto::integrity::PublisherKey::from_seed(seed);
    assert_eq!(key.stream_id().to_string(), id);

    // Two keys differ.
    let other = keygen(&dir.join("other.key"));
    assert!(other.status.success());
    assert_ne!(String::from_utf8_lossy(&other.stdout).trim_end(), id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keygen_refuses_to_overwrite() {
    let dir = scratch("exists");
    let path = dir.join("stream.key");
    std::fs::write(&path, "precious\n").expect("write");
    let out = keygen(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exists; choose another path"), "{err}");
    assert!(err.contains("stream.key"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "precious\n");
    let _ = std::fs::remove_dir_all(&dir);
}
