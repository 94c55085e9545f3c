//! The tour's second part: payments that need more than one signature or more than one
//! account. A 2-of-3 multi-owner account pays once two owners signed; a transfer past its
//! time window is refused; a ring of three accounts across both sections is paid as one
//! bundle; a bundle whose second payer never signs aborts at its deadline and refunds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::wallet::Wallet;
use client::{Client, ClientError};
use shared::driver::bundle::PartialBundle;
use shared::driver::multisig::{create_policy, PartialTransfer};
use shared::driver::{account_id, new_transfer, Payment};
use shared::types::{Amount, Leg, Prefix, Seq, Window};

use super::{balances, Checks, NAMES};
use crate::RunError;

/// How long the aborting bundle leaves its payers to sign.
const ABORT_DEADLINE: Duration = Duration::from_secs(3);
/// How long the committing bundle leaves its payers to sign.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);

fn in_ms(from_now: Duration) -> u64 {
    let at = SystemTime::now() + from_now;
    at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64)
}

/// Runs the second part on the tour's wallets (alice and bob in section 0, carol and dave
/// in section 1), adding its checks.
pub(super) async fn tour(
    client: &Client,
    wallets: &mut [Wallet],
    faucet: &mut Wallet,
    checks: &mut Checks,
) -> Result<(), RunError> {
    let accounts: Vec<_> = wallets.iter().map(Wallet::account).collect();
    let start = balances(client, wallets).await?;
    let prefixes: Vec<Prefix> = client.network().sections.iter().map(|s| s.prefix).collect();

    println!("\na 2-of-3 multi-owner account in section {}:", prefixes[0]);
    let owners: Vec<_> =
        (0..3).map(|_| ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)).collect();
    let ids = owners.iter().map(account_id).collect();
    let (policy, shared) = create_policy(2, ids, Some(prefixes[0])).map_err(ClientError::from)?;
    let funded = client.send(faucet, Payment::new(shared, Amount(300))).await?;
    client.wait_for_credit(&funded).await?;
    let transfer = new_transfer(shared, Payment::new(accounts[2], Amount(120)), Seq::FIRST)
        .map_err(|error| RunError::Failed(error.to_string()))?;
    let mut partial = PartialTransfer::new(policy, transfer).map_err(ClientError::from)?;
    partial.sign(&owners[0], &client.network().genesis).map_err(ClientError::from)?;
    let one_signature = client.submit(&partial).await;
    partial.sign(&owners[2], &client.network().genesis).map_err(ClientError::from)?;
    let paid = client.submit(&partial).await?;
    client.wait_for_credit(&paid).await?;
    println!("  owners 1 and 3 signed: shared → carol 120, seq {}", paid.seq);
    checks.check(
        one_signature.is_err_and(|error| error.to_string().contains("1 more needed"))
            && client.balance(shared).await?.balance == Amount(180),
        "a multi-owner payment goes through once 2 of its 3 owners signed, not before",
    );

    let expired = Window { valid_after: None, valid_before: Some(in_ms(Duration::ZERO) - 60_000) };
    let late = Payment { window: expired, ..Payment::new(accounts[1], Amount(5)) };
    let refused = client.send(&mut wallets[0], late).await;
    println!(
        "  alice → bob 5, valid until a minute ago: {}",
        refused.as_ref().map_or_else(|e| e.to_string(), |_| "went through".into())
    );
    checks.check(
        refused.is_err_and(|error| error.to_string().contains("expired")),
        "a transfer past its time window is refused by the elders' clocks",
    );

    println!(
        "\na ring alice → carol → bob → alice as one bundle, refereed by section {}:",
        prefixes[1]
    );
    let ring = [(0, 2, 30), (2, 1, 20), (1, 0, 10)];
    let report = bundle(client, wallets, &ring, prefixes[1], COMMIT_DEADLINE, &[0, 1, 2]).await?;
    client.wait_settled(&report.certificate).await?;
    println!(
        "  {}",
        if report.certificate.commit { "committed: every leg paid" } else { "aborted" }
    );

    println!(
        "a bundle alice → dave, dave → alice 40 that dave never signs ({} s deadline):",
        ABORT_DEADLINE.as_secs()
    );
    let pair = [(0, 3, 40), (3, 0, 40)];
    let aborted = bundle(client, wallets, &pair, prefixes[0], ABORT_DEADLINE, &[0]).await?;
    client.wait_settled(&aborted.certificate).await?;
    println!(
        "  {}",
        if aborted.certificate.commit {
            "committed"
        } else {
            "aborted: alice's locked 40 refunded"
        }
    );

    let end = balances(client, wallets).await?;
    let moved: Vec<i64> =
        end.iter().zip(&start).map(|(end, start)| *end as i64 - *start as i64).collect();
    println!(
        "  balances moved: {}",
        NAMES.iter().zip(&moved).map(|(n, m)| format!("{n} {m:+}")).collect::<Vec<_>>().join(", ")
    );
    checks.check(
        report.certificate.commit && moved[0] == -30 + 10 && moved[1] == -10 + 20,
        "the ring bundle commits: each of its three legs is paid, across both sections",
    );
    checks.check(
        !aborted.certificate.commit && aborted.locks[0].is_ok() && moved[3] == 0,
        "the bundle with an unsigned leg aborts at its deadline, and the locked leg is refunded",
    );
    checks.check(moved[2] == 120 + 30 - 20, "carol holds the multi-owner payment and her ring leg");
    Ok(())
}

/// Makes a bundle of `legs` (wallet indices and amounts), has the payers at `signers` sign
/// it, and submits it.
async fn bundle(
    client: &Client,
    wallets: &[Wallet],
    legs: &[(usize, usize, u64)],
    referee: Prefix,
    deadline: Duration,
    signers: &[usize],
) -> Result<client::BundleReport, RunError> {
    let mut partial = PartialBundle::new(in_ms(deadline), referee, rand::random());
    for &(from, to, amount) in legs {
        let from_account = wallets[from].account();
        let seq = client.balance(from_account).await?.next_seq.max(Seq::FIRST);
        let leg =
            Leg { from: from_account, to: wallets[to].account(), amount: Amount(amount), seq };
        partial.add_leg(leg).map_err(ClientError::from)?;
    }
    for &signer in signers {
        partial
            .sign(wallets[legs[signer].0].key(), None, &client.network().genesis)
            .map_err(ClientError::from)?;
    }
    Ok(client.submit_bundle(&partial).await?)
}
