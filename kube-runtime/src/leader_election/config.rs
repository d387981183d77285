//! The timings of an election and the checks that make them safe.
//!
//! Three durations govern an election (client-go's names and defaults):
//!
//! - **lease duration** (15 s): how long a candidate must see a lease
//!   unchanged before it may take it over;
//! - **renew deadline** (10 s): how long a leader keeps leading without a
//!   successful renewal; after that it stops, on its own clock;
//! - **retry period** (2 s): how often candidates try to acquire and the
//!   leader tries to renew; a candidate's wait is stretched by a random
//!   `jitter factor` (1.2) so candidates do not retry in lock step.
//!
//! The renew deadline must be shorter than the lease duration: that gap is
//! what makes a leader stop *before* anyone else may start. [`validate`]
//! refuses timings that would break this, with an error naming the setting.
//!
//! [`validate`]: LeaderElectionConfig::validate

use std::time::Duration;

/// The timings of a [`LeaderElector`](super::LeaderElector).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElectionConfig {
    /// How long a candidate waits, after it last saw the lease change,
    /// before it takes the lease over. Written to the lease as
    /// `leaseDurationSeconds`, rounded up to whole seconds. Default 15 s.
    pub lease_duration: Duration,
    /// How long the leader keeps leading after the start of its last
    /// successful renewal. Must be shorter than `lease_duration`. Default 10 s.
    pub renew_deadline: Duration,
    /// The pause between attempts to acquire or renew. Default 2 s.
    pub retry_period: Duration,
    /// A candidate waits `retry_period * (1 + random[0, jitter_factor))`
    /// between attempts. Default 1.2.
    pub jitter_factor: f64,
    /// Whether stopping the elector while leading releases the lease
    /// (empties `holderIdentity`), so that another candidate takes over at
    /// its next attempt instead of after `lease_duration`. Default true.
    pub release_on_shutdown: bool,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            jitter_factor: 1.2,
            release_on_shutdown: true,
        }
    }
}

/// A setting of an election that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The lease name is empty.
    #[error("leader election: the lease name is empty")]
    EmptyLeaseName,
    /// The identity is empty (an empty holder means "released").
    #[error("leader election: the candidate identity is empty")]
    EmptyIdentity,
    /// The `Api<Lease>` addresses all namespaces; a lease lives in one.
    #[error("leader election: the Api<Lease> has no namespace; use Api::namespaced")]
    NoNamespace,
    /// `lease_duration` is under one second or does not fit an i32 of seconds.
    #[error("leader election: lease_duration {0:?} must be between 1 s and 2^31 s")]
    LeaseDuration(Duration),
    /// `renew_deadline` is not shorter than `lease_duration`.
    #[error(
        "leader election: renew_deadline {renew_deadline:?} must be shorter than lease_duration {lease_duration:?}"
    )]
    RenewDeadlineNotBelowLease {
        /// The renew deadline given.
        renew_deadline: Duration,
        /// The lease duration given.
        lease_duration: Duration,
    },
    /// `retry_period` is zero, or with its jitter not shorter than `renew_deadline`.
    #[error(
        "leader election: retry_period {retry_period:?} must be above zero and retry_period * jitter_factor ({jitter_factor}) below renew_deadline {renew_deadline:?}"
    )]
    RetryPeriod {
        /// The retry period given.
        retry_period: Duration,
        /// The jitter factor given.
        jitter_factor: f64,
        /// The renew deadline given.
        renew_deadline: Duration,
    },
    /// `jitter_factor` is negative or not a number.
    #[error("leader election: jitter_factor {0} must be a number >= 0")]
    JitterFactor(f64),
}

impl LeaderElectionConfig {
    /// Checks the timings (client-go's rules): lease ≥ 1 s, renew deadline
    /// below the lease duration, retry period above zero and, jittered,
    /// below the renew deadline.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_duration < Duration::from_secs(1)
            || self.lease_duration > Duration::from_secs(i32::MAX as u64)
        {
            return Err(ConfigError::LeaseDuration(self.lease_duration));
        }
        if !self.jitter_factor.is_finite() || self.jitter_factor < 0.0 {
            return Err(ConfigError::JitterFactor(self.jitter_factor));
        }
        if self.renew_deadline.is_zero() || self.renew_deadline >= self.lease_duration {
            return Err(ConfigError::RenewDeadlineNotBelowLease {
                renew_deadline: self.renew_deadline,
                lease_duration: self.lease_duration,
            });
        }
        if self.retry_period.is_zero()
            || self.retry_period.mul_f64(self.jitter_factor.max(1.0)) >= self.renew_deadline
        {
            return Err(ConfigError::RetryPeriod {
                retry_period: self.retry_period,
                jitter_factor: self.jitter_factor,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }

    /// `leaseDurationSeconds` as written to the lease: the lease duration
    /// rounded up, so that others never wait less than we assume.
    pub(crate) fn lease_seconds(&self) -> i32 {
        let d = self.lease_duration;
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// A candidate's pause between attempts: the retry period stretched by
    /// a random share of the jitter factor.
    pub(crate) fn jittered_retry(&self) -> Duration {
        self.retry_period
            .mul_f64(1.0 + fastrand::f64() * self.jitter_factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn defaults_are_client_gos_and_valid() {
        let c = LeaderElectionConfig::default();
        assert_eq!(
            (c.lease_duration, c.renew_deadline, c.retry_period),
            (secs(15.0), secs(10.0), secs(2.0))
        );
        assert_eq!(c.jitter_factor, 1.2);
        c.validate().unwrap();
        assert_eq!(c.lease_seconds(), 15);
    }

    #[test]
    fn unsafe_timings_are_refused_by_name() {
        let base = LeaderElectionConfig::default();
        let renew_too_long = LeaderElectionConfig {
            renew_deadline: secs(15.0),
            ..base.clone()
        };
        assert!(matches!(
            renew_too_long.validate(),
            Err(ConfigError::RenewDeadlineNotBelowLease { .. })
        ));
        let retry_too_long = LeaderElectionConfig {
            retry_period: secs(9.0),
            ..base.clone()
        };
        let err = retry_too_long.validate().unwrap_err();
        assert!(matches!(err, ConfigError::RetryPeriod { .. }));
        assert!(err.to_string().contains("retry_period 9s"), "{err}");
        let short_lease = LeaderElectionConfig {
            lease_duration: secs(0.5),
            renew_deadline: secs(0.2),
            retry_period: secs(0.1),
            ..base.clone()
        };
        assert!(matches!(
            short_lease.validate(),
            Err(ConfigError::LeaseDuration(_))
        ));
        let nan = LeaderElectionConfig {
            jitter_factor: f64::NAN,
            ..base
        };
        assert!(matches!(nan.validate(), Err(ConfigError::JitterFactor(_))));
    }

    #[test]
    fn lease_seconds_round_up_and_jitter_stays_in_range() {
        let c = LeaderElectionConfig {
            lease_duration: secs(2.5),
            renew_deadline: secs(2.0),
            retry_period: secs(0.5),
            ..LeaderElectionConfig::default()
        };
        c.validate().unwrap();
        assert_eq!(c.lease_seconds(), 3);
        for _ in 0..1000 {
            let j = c.jittered_retry();
            assert!(j >= secs(0.5) && j <= secs(0.5 * 2.2), "{j:?}");
        }
    }
}
