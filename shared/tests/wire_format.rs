//! Wire-format snapshot: one deterministic sample of every message variant, encoded and
//! compared with the hex in `wire_format.snapshot`, so an accidental encoding change fails.
//! After a deliberate change, regenerate with
//! `UPDATE_SNAPSHOT=1 cargo test -p shared --test wire_format` and commit the file.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::samples;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/wire_format.snapshot");

/// The snapshot file's lines, `name hex`, in sample order.
fn render(lines: &[(String, String)]) -> String {
    lines.iter().map(|(name, hex)| format!("{name} {hex}\n")).collect()
}

/// Parses the snapshot file into name → hex.
fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, hex) = line.split_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
            (name.to_string(), hex.trim().to_string())
        })
        .collect()
}

#[test]
fn every_message_variant_encodes_as_in_the_snapshot() {
    let samples = samples();
    let names: BTreeSet<&String> = samples.iter().map(|(name, _)| name).collect();
    assert_eq!(names.len(), samples.len(), "two samples share a name");
    let current: Vec<(String, String)> =
        samples.iter().map(|(name, sample)| (name.clone(), hex::encode(sample.encode()))).collect();

    if std::env::var("UPDATE_SNAPSHOT").as_deref() == Ok("1") {
        std::fs::write(SNAPSHOT, render(&current)).expect("write the snapshot");
        return;
    }
    let how = "if the change is deliberate, run `UPDATE_SNAPSHOT=1 cargo test -p shared \
               --test wire_format` and commit shared/tests/wire_format.snapshot";
    let text = std::fs::read_to_string(SNAPSHOT)
        .unwrap_or_else(|error| panic!("cannot read {SNAPSHOT}: {error}; {how}"));
    let stored = parse(&text);
    for ((name, hex), (_, sample)) in current.iter().zip(&samples) {
        let Some(expected) = stored.get(name) else {
            panic!("variant `{name}` has no snapshot line; {how}");
        };
        assert!(
            hex == expected,
            "the wire format of `{name}` changed:\n  snapshot {expected}\n  now      {hex}\n{how}"
        );
        let bytes = hex::decode(expected).expect("snapshot hex");
        let decoded = sample.decode_like(&bytes).expect("the snapshot decodes");
        assert_eq!(decoded, *sample, "`{name}` snapshot decodes to another value");
    }
    let gone: Vec<&String> = stored.keys().filter(|name| !names.contains(name)).collect();
    assert!(gone.is_empty(), "snapshot lines {gone:?} match no variant; {how}");
}
