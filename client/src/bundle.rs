//! `bank bundle`: the commands that make, sign, submit and look up bundles.

use std::path::Path;

use anyhow::Context;
use client::multisig;
use client::wallet::Wallet;
use client::BundleReport;
use serde_json::json;
use shared::driver::bundle::PartialBundle;
use shared::types::{Amount, BundleId, Digest, Leg, OutcomeCertificate, Policy, Seq};

use super::{connect, print, section_prefix, BundleCommand, NO_NETWORK};

/// Runs one `bank bundle` command.
pub(super) fn run(
    runtime: &tokio::runtime::Runtime,
    network: Option<&Path>,
    command: BundleCommand,
    json: bool,
) -> anyhow::Result<()> {
    match command {
        BundleCommand::New { deadline, referee, out } => {
            let prefix = section_prefix(network, referee)?;
            let partial = PartialBundle::new(deadline, prefix, rand::random());
            multisig::create(&out, &partial)?;
            print_bundle(json, &partial, &out);
            Ok(())
        }
        BundleCommand::Leg { bundle: path, from, to, amount } => {
            let client = connect(network)?;
            let mut partial = read(&path)?;
            let seq = runtime.block_on(client.balance(from))?.next_seq.max(Seq::FIRST);
            partial.add_leg(Leg { from, to, amount: Amount(amount), seq })?;
            multisig::replace(&path, &partial)?;
            print_bundle(json, &partial, &path);
            Ok(())
        }
        BundleCommand::Sign { bundle: path, key, policy } => {
            let network = transport::map::read(network.context(NO_NETWORK)?)?;
            let mut partial = read(&path)?;
            partial.check(&network.genesis)?;
            let policy: Option<Policy> = match policy {
                Some(policy) => Some(multisig::read(&policy, "a policy file")?),
                None => None,
            };
            let key = Wallet::open(&key)?.key().clone();
            partial.sign(&key, policy.as_ref(), &network.genesis)?;
            multisig::replace(&path, &partial)?;
            print_bundle(json, &partial, &path);
            Ok(())
        }
        BundleCommand::Submit { bundle: path, wait } => {
            let client = connect(network)?;
            let partial = read(&path)?;
            let report = runtime.block_on(client.submit_bundle(&partial))?;
            let settled =
                wait && runtime.block_on(client.wait_settled(&report.certificate)).is_ok();
            print_report(json, &report, settled);
            if wait && !settled {
                anyhow::bail!(
                    "bundle {} is decided, but not every section confirmed it settled in time; \
                     check with `bank bundle status {}`",
                    report.bundle,
                    report.bundle
                );
            }
            Ok(())
        }
        BundleCommand::Status { id } => {
            let client = connect(network)?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(&id, &mut bytes)
                .ok()
                .with_context(|| format!("a bundle id is 64 hex digits; got {id:?}"))?;
            let id = BundleId(Digest(bytes));
            match runtime.block_on(client.bundle_outcome(id))? {
                Some(certificate) => print_outcome(json, id, &certificate),
                None => print(
                    json,
                    json!({ "bundle": id.to_string(), "outcome": null }),
                    format!("bundle {id}: not decided"),
                ),
            }
            Ok(())
        }
    }
}

fn read(path: &Path) -> anyhow::Result<PartialBundle> {
    Ok(multisig::read(path, "a bundle file (`bank bundle new`)")?)
}

fn print_bundle(json: bool, partial: &PartialBundle, path: &Path) {
    let unsigned = partial.unsigned_legs();
    let legs: Vec<serde_json::Value> = partial
        .bundle
        .legs
        .iter()
        .map(|leg| json!({ "from": leg.from.to_string(), "to": leg.to.to_string(), "amount": leg.amount.0, "seq": leg.seq.0 }))
        .collect();
    let value = json!({
        "bundle": path.display().to_string(),
        "id": partial.id().to_string(),
        "legs": legs,
        "unsigned_legs": unsigned,
        "deadline_ms": partial.bundle.deadline_ms,
        "referee": partial.bundle.referee.to_string(),
    });
    let next = if partial.bundle.legs.is_empty() {
        format!("add legs: `bank bundle leg {} --from A --to B --amount N`", path.display())
    } else if unsigned.is_empty() {
        format!("every payer signed: `bank bundle submit {}`", path.display())
    } else {
        format!(
            "legs {unsigned:?} wait for their payer: `bank bundle sign {} --key K`",
            path.display()
        )
    };
    let text = format!(
        "bundle {} with {} leg(s), referee section {}; {next}",
        partial.id(),
        partial.bundle.legs.len(),
        partial.bundle.referee
    );
    print(json, value, text);
}

fn print_report(json: bool, report: &BundleReport, settled: bool) {
    let commit = report.certificate.commit;
    let fates: Vec<String> = report
        .locks
        .iter()
        .map(|lock| match (commit, lock) {
            (true, _) => "paid".to_string(),
            (false, Ok(_)) => "refunded".to_string(),
            (false, Err(reason)) => format!("not locked ({reason})"),
        })
        .collect();
    let value = json!({
        "bundle": report.bundle.to_string(),
        "outcome": if commit { "commit" } else { "abort" },
        "legs": fates,
        "settled": settled,
    });
    let mut text =
        format!("bundle {}: {}", report.bundle, if commit { "committed" } else { "aborted" });
    for (index, (leg, fate)) in report.certificate.bundle.legs.iter().zip(&fates).enumerate() {
        text.push_str(&format!(
            "\n  leg {index}: {} -> {} {}: {fate}",
            leg.from, leg.to, leg.amount
        ));
    }
    if settled {
        text.push_str("\nsettled in every section of the bundle");
    }
    print(json, value, text);
}

fn print_outcome(json: bool, id: BundleId, certificate: &OutcomeCertificate) {
    let outcome = if certificate.commit { "commit" } else { "abort" };
    let value = json!({ "bundle": id.to_string(), "outcome": outcome, "legs": certificate.bundle.legs.len() });
    print(json, value, format!("bundle {id}: {outcome} ({} legs)", certificate.bundle.legs.len()));
}
