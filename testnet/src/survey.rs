//! Asking a network's elders how they are: up or down, their state digests and balance totals,
//! and waiting until all answer.

use std::time::{Duration, Instant};

use crate::limits::SURVEY_POLL_MS;
use client::Client;
use shared::messages::{ClientReply, ClientRequest, ElderStatus};
use shared::types::{ElderIndex, Prefix};

/// The status of elder `index` of section `section`, if it answers.
pub async fn status(client: &Client, section: usize, index: u32) -> Option<ElderStatus> {
    match client.ask(section, ElderIndex(index), &ClientRequest::Status).await {
        Ok(ClientReply::Status(status)) => Some(status),
        _ => None,
    }
}

/// Every elder's status, section by section (`None` for an elder that did not answer).
pub async fn statuses(client: &Client) -> Vec<Vec<Option<ElderStatus>>> {
    // Every elder at once, so an elder that is down costs one timeout, not one per section.
    let sections = client.network().sections.iter().enumerate().map(|(position, section)| {
        let asks =
            (0..section.elder_count() as u32).map(move |index| status(client, position, index));
        futures::future::join_all(asks)
    });
    futures::future::join_all(sections).await
}

/// Waits until every elder answers, reporting how many do as it goes; returns the elders that
/// never answered, as `section/index`.
pub async fn wait_ready(
    client: &Client,
    patience: Duration,
    mut progress: impl FnMut(usize, usize),
) -> Vec<String> {
    let deadline = Instant::now() + patience;
    loop {
        let all = statuses(client).await;
        let total = all.iter().map(Vec::len).sum();
        let ready = all.iter().flatten().filter(|status| status.is_some()).count();
        progress(ready, total);
        if ready == total || Instant::now() >= deadline {
            return missing(client, &all);
        }
        tokio::time::sleep(Duration::from_millis(SURVEY_POLL_MS)).await;
    }
}

fn missing(client: &Client, all: &[Vec<Option<ElderStatus>>]) -> Vec<String> {
    let sections = &client.network().sections;
    let mut names = Vec::new();
    for (section, statuses) in sections.iter().zip(all) {
        for (index, status) in statuses.iter().enumerate() {
            if status.is_none() {
                names.push(format!("{}/{index}", section.prefix));
            }
        }
    }
    names
}

/// One section as its elders describe it.
#[derive(Clone, Debug)]
pub struct SectionView {
    /// The section.
    pub prefix: Prefix,
    /// Each elder's status, if it answered.
    pub elders: Vec<Option<ElderStatus>>,
}

impl SectionView {
    /// The state digest, balance total and applied count most answering elders share, if at
    /// least `f + 1` share it (then an honest elder stands behind it).
    pub fn agreed(&self) -> Option<&ElderStatus> {
        let answering: Vec<&ElderStatus> = self.elders.iter().flatten().collect();
        let needed = shared::network::faults_max(self.elders.len()) + 1;
        answering.iter().copied().find(|candidate| {
            let same = answering.iter().filter(|other| same_state(candidate, other)).count();
            same >= needed
        })
    }

    /// Whether every answering elder reports the same state.
    pub fn answering_agree(&self) -> bool {
        let mut answering = self.elders.iter().flatten();
        let first = answering.next();
        answering.all(|other| first.is_some_and(|first| same_state(first, other)))
    }
}

fn same_state(one: &ElderStatus, other: &ElderStatus) -> bool {
    (one.state_digest, one.balance_total) == (other.state_digest, other.balance_total)
}

/// Every section's view.
pub async fn survey(client: &Client) -> Vec<SectionView> {
    let sections = &client.network().sections;
    statuses(client)
        .await
        .into_iter()
        .zip(sections)
        .map(|(elders, section)| SectionView { prefix: section.prefix, elders })
        .collect()
}

/// The sum of the sections' agreed balance totals; `None` if a section has no agreement.
pub fn total_balance(views: &[SectionView]) -> Option<u128> {
    views.iter().map(|view| Some(view.agreed()?.balance_total)).sum()
}

/// Waits until every section's elders all agree and the balances add up to the supply, with
/// nothing in any outbox; returns the final views, or the last ones seen at the deadline.
pub async fn wait_settled(client: &Client, patience: Duration) -> (bool, Vec<SectionView>) {
    let supply = client.network().map.supply;
    let deadline = Instant::now() + patience;
    loop {
        let views = survey(client).await;
        let settled = views.iter().all(|view| {
            view.elders.iter().all(|status| status.as_ref().is_some_and(|s| s.outbox == 0))
                && view.answering_agree()
        }) && total_balance(&views) == Some(u128::from(supply.0));
        if settled || Instant::now() >= deadline {
            return (settled, views);
        }
        tokio::time::sleep(Duration::from_millis(SURVEY_POLL_MS)).await;
    }
}

/// Polls `condition` every `SURVEY_POLL_MS` until it holds (true) or `patience` runs out (false).
pub async fn wait_until<F, Fut>(patience: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(SURVEY_POLL_MS)).await;
    }
    false
}

/// Clients (one connection per elder each) enough for `in_flight` requests at
/// `per_client` each; they keep trying for a minute before calling a section unreachable.
pub fn clients(
    network: &std::sync::Arc<shared::network::Network>,
    in_flight: usize,
    per_client: usize,
) -> Result<Vec<Client>, client::ClientError> {
    let count = in_flight.div_ceil(per_client.max(1)).max(1);
    (0..count)
        .map(|_| {
            let mut client = Client::new(network.clone())?;
            client.set_patience(Duration::from_secs(60));
            Ok(client)
        })
        .collect()
}
