//! Running a driver over QUIC: its requests go out on kept connections (opened on first use,
//! reopened after a failure), each answer or failure is handed back with its tag, and the
//! driver's deadlines are kept with the tokio clock. The wallet is saved, when the driver
//! says so, before the requests that depend on it leave.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use shared::driver::{Drive, Outgoing};
use shared::messages::{ClientReply, ClientRequest};
use shared::types::ElderIndex;
use transport::files::FileError;
use transport::quic::{self, TransportError};

use crate::{Client, ClientError};

type Answer = (ElderIndex, u64, Result<ClientReply, String>);
type Asking<'a> = Pin<Box<dyn Future<Output = Answer> + Send + 'a>>;

impl Client {
    /// One request to one elder, over its kept connection (reopened if it closed), answered
    /// within the driver's answer time. The exchange runs as a task of its own, so a driver
    /// that ends before the answer time (it had enough answers, or ran out of patience) does
    /// not cancel its timeout: a connection to an elder that crashed and came back, which no
    /// error closes, is still found dead and opened afresh for the next request.
    pub async fn ask(
        &self,
        section: usize,
        elder: ElderIndex,
        request: &ClientRequest,
    ) -> Result<ClientReply, TransportError> {
        let timeout = Duration::from_millis(self.timing.answer_ms);
        let timed_out = move || TransportError::Timeout { ms: timeout.as_millis() };
        let connection = tokio::time::timeout(timeout, self.connection(section, elder))
            .await
            .map_err(|_| timed_out())??;
        let (connections, request) = (self.connections.clone(), request.clone());
        let exchange = tokio::spawn(async move {
            let outcome = tokio::time::timeout(timeout, quic::exchange(&connection, &request))
                .await
                .unwrap_or_else(|_| Err(timed_out()));
            if outcome.is_err() {
                // A paused or dead elder's connection is opened afresh next time, unless a
                // newer one took its place already.
                let mut kept = connections.lock().expect("connections lock");
                if kept
                    .get(&(section, elder))
                    .is_some_and(|c| c.stable_id() == connection.stable_id())
                {
                    kept.remove(&(section, elder));
                }
            }
            outcome
        });
        match exchange.await {
            Ok(outcome) => outcome,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(timed_out()),
        }
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

    async fn ask_tagged(&self, outgoing: Outgoing) -> Answer {
        let answer = self.ask(outgoing.section, outgoing.elder, &outgoing.request).await;
        (outgoing.elder, outgoing.tag, answer.map_err(|error| error.to_string()))
    }

    /// Runs `driver` to its outcome: `save` makes the wallet durable whenever the driver
    /// changed it, before the requests that follow leave.
    pub(crate) async fn drive<D: Drive>(
        &self,
        driver: &mut D,
        mut save: impl FnMut(&D) -> Result<(), FileError>,
    ) -> Result<D::Outcome, ClientError> {
        let started = Instant::now();
        let now_ms = || started.elapsed().as_millis() as u64;
        let mut asking: FuturesUnordered<Asking<'_>> = FuturesUnordered::new();
        loop {
            driver.handle_timeout(now_ms());
            let ready = driver.poll();
            if ready.wallet_changed {
                save(driver)?;
            }
            for outgoing in ready.unsaved.saved() {
                asking.push(Box::pin(self.ask_tagged(outgoing)));
            }
            if let Some(outcome) = driver.take_outcome() {
                return Ok(outcome);
            }
            let deadline = driver.poll_timeout().expect("a driver without an outcome waits");
            let wake = tokio::time::Instant::from_std(started + Duration::from_millis(deadline));
            tokio::select! {
                Some((elder, tag, reply)) = asking.next(), if !asking.is_empty() => {
                    driver.handle_reply(elder, tag, reply, now_ms());
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}
