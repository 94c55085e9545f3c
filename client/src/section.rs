//! Asking every elder of a section at once: connections are opened on first use and kept, each
//! answer is judged as it comes, and an elder is asked again after a pause when the judge says
//! so, until the judge is done or the client's patience runs out.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use shared::client::{AgreedAnswer, Progress, ShareCollector};
use shared::messages::{ClientReply, ClientRequest};
use shared::network::{faults_max, Section};
use shared::rejection::Rejection;
use shared::types::{AccountId, DebitProof, ElderIndex, Prefix, SignedTransfer};
use transport::quic::{self, TransportError};

use crate::{Certified, Client, ClientError};

/// How long one request, connecting included, may take before the elder counts as not
/// answering.
const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Pause before asking an elder again.
const RETRY_DELAY_MS: u64 = 200;

/// What the judge of a section's answers decides after one answer.
// Short-lived and returned by value once per answer: boxing the request buys nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step<T> {
    /// The operation is over.
    Done(Result<T, ClientError>),
    /// Ask this elder again, after a pause, with this request.
    Again(ClientRequest),
    /// This elder's answer is final.
    Settled,
}

type Asking<'a> = Pin<
    Box<
        dyn Future<Output = (ElderIndex, ClientRequest, Result<ClientReply, TransportError>)>
            + Send
            + 'a,
    >,
>;

impl Client {
    /// One request to one elder, over its kept connection (reopened if it closed).
    pub async fn ask(
        &self,
        section: usize,
        elder: ElderIndex,
        request: &ClientRequest,
    ) -> Result<ClientReply, TransportError> {
        let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
        let exchange = async {
            let connection = self.connection(section, elder).await?;
            quic::exchange(&connection, request).await
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(TransportError::Timeout { ms: timeout.as_millis() }),
        };
        if outcome.is_err() {
            // A paused or dead elder's connection is opened afresh next time.
            self.connections.lock().expect("connections lock").remove(&(section, elder));
        }
        outcome
    }

    async fn connection(
        &self,
        section: usize,
        elder: ElderIndex,
    ) -> Result<quinn::Connection, TransportError> {
        let key = (section, elder);
        if let Some(connection) = self.connections.lock().expect("connections lock").get(&key) {
            if connection.close_reason().is_none() {
                return Ok(connection.clone());
            }
        }
        let info = &self.network.sections[section].elders[elder.0 as usize];
        let connection = quic::connect(&self.endpoint, info).await?;
        self.connections.lock().expect("connections lock").insert(key, connection.clone());
        Ok(connection)
    }

    /// Sends `request` to every elder of `section` and hands each answer to `judge`.
    pub(crate) async fn poll<T>(
        &self,
        section: usize,
        request: ClientRequest,
        mut judge: impl FnMut(
            ElderIndex,
            Result<ClientReply, TransportError>,
            &ClientRequest,
        ) -> Step<T>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let elders = self.network.sections[section].elder_count();
        let mut asking: FuturesUnordered<Asking<'_>> = FuturesUnordered::new();
        for index in 0..elders as u32 {
            asking.push(Box::pin(self.ask_after(section, ElderIndex(index), request.clone(), 0)));
        }
        let mut last_problem = String::from("no answer yet");
        let deadline = tokio::time::Instant::from_std(started + self.patience);
        loop {
            let next = tokio::time::timeout_at(deadline, asking.next()).await;
            let Ok(Some((elder, request, answer))) = next else { break };
            match &answer {
                Err(error) => last_problem = format!("elder {elder}: {error}"),
                Ok(ClientReply::Rejected(rejection)) => {
                    last_problem = format!("elder {elder}: {rejection}")
                }
                Ok(_) => {}
            }
            match judge(elder, answer, &request) {
                Step::Done(outcome) => return outcome,
                Step::Again(request) => {
                    asking.push(Box::pin(self.ask_after(section, elder, request, RETRY_DELAY_MS)))
                }
                Step::Settled => {}
            }
        }
        Err(self.unreachable(&self.network.sections[section], last_problem))
    }

    async fn ask_after(
        &self,
        section: usize,
        elder: ElderIndex,
        request: ClientRequest,
        delay_ms: u64,
    ) -> (ElderIndex, ClientRequest, Result<ClientReply, TransportError>) {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let answer = self.ask(section, elder, &request).await;
        (elder, request, answer)
    }

    pub(crate) fn unreachable(&self, section: &Section, last_problem: String) -> ClientError {
        ClientError::Unreachable {
            prefix: section.prefix,
            elders: section.elder_count(),
            seconds: self.patience.as_secs(),
            last_problem,
        }
    }

    pub(crate) fn unexpected(&self, account: AccountId, reply: ClientReply) -> ClientError {
        let section = self.network.section_of(&account);
        match reply {
            ClientReply::Rejected(rejection) => {
                refused(section.prefix, vec![(ElderIndex(0), rejection)])
            }
            other => {
                self.unreachable(section, format!("elders agreed on a wrong answer: {other:?}"))
            }
        }
    }

    /// The answer `f + 1` elders of `account`'s section agree on (R8).
    pub(crate) async fn agree(
        &self,
        account: AccountId,
        request: ClientRequest,
    ) -> Result<ClientReply, ClientError> {
        let section = self.network.section_index_of(&account);
        let mut answers = AgreedAnswer::new(&self.network.sections[section]);
        self.poll(section, request, |elder, answer, request| match answer {
            Ok(reply) => match answers.add(elder, reply) {
                Some(agreed) => Step::Done(Ok(agreed)),
                None => Step::Again(request.clone()),
            },
            Err(_) => Step::Again(request.clone()),
        })
        .await
    }

    /// Collects shares for `signed` from its section; lagging elders get the earlier proofs.
    pub(crate) async fn certify_or_rival(
        &self,
        signed: SignedTransfer,
        recent: &[DebitProof],
    ) -> Result<Certified, ClientError> {
        let section = self.network.section_index_of(&signed.transfer.from);
        let prefix = self.network.sections[section].prefix;
        let mut collector = ShareCollector::new(self.network.clone(), signed.clone());
        let request = ClientRequest::Validate { transfer: signed.clone(), deps: Vec::new() };
        self.poll(section, request, |elder, answer, request| match answer {
            Err(_) => Step::Again(request.clone()),
            Ok(ClientReply::Rejected(rejection)) if rejection.is_retryable() => {
                let deps = deps_for(&rejection, recent);
                Step::Again(ClientRequest::Validate { transfer: signed.clone(), deps })
            }
            Ok(reply) => match collector.add(elder, reply) {
                Progress::Waiting => Step::Settled,
                Progress::Certified(proof) => Step::Done(Ok(Certified::Proof(proof))),
                Progress::Conflict(rival) => Step::Done(Ok(Certified::Rival(rival))),
                Progress::Refused(refusals) => Step::Done(Err(refused(prefix, refusals))),
            },
        })
        .await
    }

    /// Registers a debit proof with its sender's section until `n − f` elders applied it.
    pub async fn register(
        &self,
        proof: &DebitProof,
        recent: &[DebitProof],
    ) -> Result<(), ClientError> {
        let section = self.network.section_index_of(&proof.transfer().from);
        let info = &self.network.sections[section];
        let (prefix, needed, elders) = (info.prefix, info.shares_needed(), info.elder_count());
        let mut registered = BTreeSet::new();
        let mut refusals = Vec::new();
        let request = ClientRequest::Register { proof: proof.clone(), deps: Vec::new() };
        self.poll(section, request, |elder, answer, request| match answer {
            Err(_) => Step::Again(request.clone()),
            Ok(ClientReply::Registered { .. }) => {
                registered.insert(elder);
                if registered.len() >= needed {
                    return Step::Done(Ok(()));
                }
                Step::Settled
            }
            Ok(ClientReply::Rejected(rejection)) if rejection.is_retryable() => {
                let deps = deps_for(&rejection, recent);
                Step::Again(ClientRequest::Register { proof: proof.clone(), deps })
            }
            Ok(ClientReply::Rejected(rejection)) => {
                refusals.push((elder, rejection));
                if refusals.len() > faults_max(elders) {
                    return Step::Done(Err(refused(prefix, refusals.clone())));
                }
                Step::Settled
            }
            Ok(_) => Step::Settled,
        })
        .await
    }
}

/// The own earlier debits an elder lacks, by its `SeqAhead` answer.
fn deps_for(rejection: &Rejection, recent: &[DebitProof]) -> Vec<DebitProof> {
    match rejection {
        Rejection::SeqAhead { next_seq, .. } => {
            recent.iter().filter(|proof| proof.transfer().seq >= *next_seq).cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// A refusal error, summarised by its most common reason.
fn refused(prefix: Prefix, refusals: Vec<(ElderIndex, Rejection)>) -> ClientError {
    let mut counts: Vec<(usize, String)> = Vec::new();
    for (_, rejection) in &refusals {
        let text = rejection.to_string();
        match counts.iter_mut().find(|(_, known)| *known == text) {
            Some((count, _)) => *count += 1,
            None => counts.push((1, text)),
        }
    }
    let reason = counts
        .into_iter()
        .max_by_key(|(count, _)| *count)
        .map_or_else(|| "no reason given".to_string(), |(_, text)| text);
    ClientError::Refused { prefix, reason, refusals }
}
