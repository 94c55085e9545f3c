//! What a simulation run did: work done, faults injected, invariant checks run.

use std::fmt;
use std::ops::AddAssign;

/// Counters of one run, or of many runs added up.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Seeds run.
    pub seeds: u64,
    /// Transfers certified into a debit proof by a client.
    pub transfers_certified: u64,
    /// Certified transfers whose registration reached `n − f` elders.
    pub transfers_registered: u64,
    /// Certified transfers that crossed sections.
    pub transfers_cross_section: u64,
    /// Messages the network lost.
    pub messages_dropped: u64,
    /// Messages the network delivered twice.
    pub messages_duplicated: u64,
    /// Messages held back long enough to be reordered.
    pub messages_delayed: u64,
    /// Elder crashes (each followed by a restart from its records).
    pub crashes: u64,
    /// Byzantine elders, by behaviour.
    pub byzantine_garbage_shares: u64,
    /// Shares a Byzantine elder signed for transfers an honest one would refuse.
    pub byzantine_conflicting_shares: u64,
    /// Messages a withholding Byzantine elder swallowed.
    pub byzantine_withheld: u64,
    /// Forged, replayed or misrouted credits and forged sync pages a Byzantine elder sent.
    pub byzantine_forged_credits: u64,
    /// Lying balance or history answers a Byzantine elder gave.
    pub byzantine_lies: u64,
    /// Clients that signed two transfers for one seq.
    pub client_equivocations: u64,
    /// Clients that lost track of a signed transfer and recovered it from a conflict answer.
    pub client_lost_track: u64,
    /// Transfers with a wrong (ahead or stale) seq.
    pub client_wrong_seq: u64,
    /// Transfers over the balance.
    pub client_overspends: u64,
    /// Transfers of zero.
    pub client_zero_amounts: u64,
    /// Transfers with a bad account signature.
    pub client_bad_signatures: u64,
    /// Transfers to oneself.
    pub client_self_transfers: u64,
    /// Registrations of an already applied proof.
    pub client_replays: u64,
    /// Cross-section proofs handed only to the recipient section, never registered at home.
    pub client_skipped_registrations: u64,
    /// Balance answers a client accepted after `f + 1` agreed.
    pub balances_agreed: u64,
    /// Clients left stuck at a seq by their own equivocation (R9).
    pub clients_stuck: u64,
    /// Bundles made, and certified outcomes the bundler got: commits and aborts.
    pub bundles_made: u64,
    /// Bundles the referee certified commit for.
    pub bundles_committed: u64,
    /// Bundles the referee certified abort for.
    pub bundles_aborted: u64,
    /// Voids that closed the slot of an aborted leg some elders had locked.
    pub voids_certified: u64,
    /// Shares honest elders signed for transfers with a time window, each checked against
    /// the elder's clock (R11).
    pub windowed_shares: u64,
    /// Rounds of votes and shares for both outcomes a Byzantine referee elder sent.
    pub byzantine_outcome_equivocations: u64,
    /// Partitions that cut sections apart.
    pub partitions: u64,
    /// Peer messages a partition cut.
    pub messages_cut: u64,
    /// Validate refusals for a full outbox towards a section.
    pub outbox_full_refusals: u64,
    /// Honest transfers that a lagging elder first refused for funds and that were certified
    /// once it caught up (finding 1 of the liveness review).
    pub refusals_waited_out: u64,
    /// Batches the elders' ledgers handled through the batch entry point.
    pub batches: u64,
    /// Batches of more than one input: one group commit for several requests.
    pub batches_of_several: u64,
    /// Proof signatures checked ahead of a batch, together.
    pub proofs_checked_ahead: u64,
    /// Shares signed ahead of a batch.
    pub shares_signed_ahead: u64,
    /// Individual invariant assertions that ran.
    pub invariant_checks: u64,
}

impl AddAssign<&Stats> for Stats {
    fn add_assign(&mut self, other: &Stats) {
        macro_rules! add {
            ($($field:ident),*) => { $(self.$field += other.$field;)* };
        }
        add!(
            seeds,
            transfers_certified,
            transfers_registered,
            transfers_cross_section,
            messages_dropped,
            messages_duplicated,
            messages_delayed,
            crashes,
            byzantine_garbage_shares,
            byzantine_conflicting_shares,
            byzantine_withheld,
            byzantine_forged_credits,
            byzantine_lies,
            client_equivocations,
            client_lost_track,
            client_wrong_seq,
            client_overspends,
            client_zero_amounts,
            client_bad_signatures,
            client_self_transfers,
            client_replays,
            client_skipped_registrations,
            balances_agreed,
            clients_stuck,
            bundles_made,
            bundles_committed,
            bundles_aborted,
            voids_certified,
            windowed_shares,
            byzantine_outcome_equivocations,
            partitions,
            messages_cut,
            outbox_full_refusals,
            refusals_waited_out,
            batches,
            batches_of_several,
            proofs_checked_ahead,
            shares_signed_ahead,
            invariant_checks
        );
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seeds run:                {}", self.seeds)?;
        writeln!(
            f,
            "transfers:                {} certified, {} registered, {} cross-section",
            self.transfers_certified, self.transfers_registered, self.transfers_cross_section
        )?;
        writeln!(
            f,
            "network faults:           {} dropped, {} duplicated, {} delayed/reordered",
            self.messages_dropped, self.messages_duplicated, self.messages_delayed
        )?;
        writeln!(f, "elder crashes/restarts:   {}", self.crashes)?;
        writeln!(
            f,
            "byzantine elders:         {} garbage shares, {} conflicting shares, {} withheld, \
             {} forged credits, {} lies",
            self.byzantine_garbage_shares,
            self.byzantine_conflicting_shares,
            self.byzantine_withheld,
            self.byzantine_forged_credits,
            self.byzantine_lies
        )?;
        writeln!(
            f,
            "misbehaving clients:      {} equivocations, {} lost track, {} wrong seq, \
             {} overspends, {} zero amounts, {} bad signatures, {} self transfers, {} replays, \
             {} skipped registrations",
            self.client_equivocations,
            self.client_lost_track,
            self.client_wrong_seq,
            self.client_overspends,
            self.client_zero_amounts,
            self.client_bad_signatures,
            self.client_self_transfers,
            self.client_replays,
            self.client_skipped_registrations
        )?;
        writeln!(
            f,
            "partitions:               {} ({} peer messages cut, {} outbox-full refusals)",
            self.partitions, self.messages_cut, self.outbox_full_refusals
        )?;
        writeln!(f, "lagging refusals outwaited: {}", self.refusals_waited_out)?;
        writeln!(f, "windowed shares (R11):    {}", self.windowed_shares)?;
        writeln!(
            f,
            "bundles:                  {} made, {} committed, {} aborted, {} slots voided ({} \
             outcome equivocations by byzantine referees)",
            self.bundles_made,
            self.bundles_committed,
            self.bundles_aborted,
            self.voids_certified,
            self.byzantine_outcome_equivocations
        )?;
        writeln!(
            f,
            "ledger batches:           {} ({} of several inputs; {} proofs checked and {} \
             shares signed ahead)",
            self.batches,
            self.batches_of_several,
            self.proofs_checked_ahead,
            self.shares_signed_ahead
        )?;
        writeln!(f, "clients stuck (R9):       {}", self.clients_stuck)?;
        writeln!(f, "balances agreed (f + 1):  {}", self.balances_agreed)?;
        write!(f, "invariant checks:         {}", self.invariant_checks)
    }
}
