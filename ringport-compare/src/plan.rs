//! What a comparison runs: the models, the workloads and the connection counts, the time of
//! each point, and how long the whole matrix takes.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ringport_models::Model;
use serde::{Deserialize, Serialize};

/// The load put on each model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Workload {
    /// Echo ping-pong: 64-byte messages, one in flight per connection.
    Echo64,
    /// Downloads of a 64 KiB file, one after another on each connection (nc protocol).
    Download64K,
    /// Downloads of a 1 MiB file.
    Download1M,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 3] = [
        Workload::Echo64,
        Workload::Download64K,
        Workload::Download1M,
    ];

    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo64 => "echo-64B",
            Workload::Download64K => "download-64KiB",
            Workload::Download1M => "download-1MiB",
        }
    }

    /// The size of a download (`None` for echo).
    pub fn file_size(self) -> Option<u64> {
        match self {
            Workload::Echo64 => None,
            Workload::Download64K => Some(64 * 1024),
            Workload::Download1M => Some(1024 * 1024),
        }
    }

    /// What one operation is, for tables and charts.
    pub fn op(self) -> &'static str {
        match self {
            Workload::Echo64 => "round trip",
            _ => "download",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Workload> for String {
    fn from(w: Workload) -> String {
        w.name().to_owned()
    }
}

impl TryFrom<String> for Workload {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown workload {s:?} (expected echo-64B, download-64KiB or download-1MiB)"
                )
            })
    }
}

/// The matrix of a comparison and the time of each point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Models, each started afresh for every point.
    #[serde(serialize_with = "model_names", deserialize_with = "models_named")]
    pub models: Vec<Model>,
    /// Workloads.
    pub workloads: Vec<Workload>,
    /// Connection counts.
    pub connections: Vec<usize>,
    /// Unmeasured time after all connections are established.
    #[serde(
        rename = "warmup_s",
        serialize_with = "secs",
        deserialize_with = "from_secs"
    )]
    pub warmup: Duration,
    /// The measured window of each point.
    #[serde(
        rename = "duration_s",
        serialize_with = "secs",
        deserialize_with = "from_secs"
    )]
    pub duration: Duration,
    /// Times the whole matrix runs; each point reports the median of its rounds.
    pub rounds: usize,
}

fn model_names<S: serde::Serializer>(models: &[Model], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(models.iter().map(|m| m.name()))
}

fn models_named<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Model>, D::Error> {
    let names: Vec<String> = Deserialize::deserialize(d)?;
    names
        .iter()
        .map(|n| n.parse().map_err(serde::de::Error::custom))
        .collect()
}

fn from_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs: f64 = Deserialize::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Time a point takes besides its warmup and window: starting and stopping the server,
/// opening and closing the connections (as measured on a 2-core machine: about 5 s more
/// at 10,000 connections).
fn overhead(conns: usize) -> Duration {
    Duration::from_millis(400) + Duration::from_micros(500) * conns as u32
}

impl Plan {
    /// The full matrix: every model and workload at 1, 10, 100, 1,000 and 10,000 connections,
    /// 1 s warmup and 4 s measured per point.
    pub fn full() -> Self {
        Plan {
            models: Model::ALL.to_vec(),
            workloads: Workload::ALL.to_vec(),
            connections: vec![1, 10, 100, 1000, 10_000],
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(4),
            rounds: 1,
        }
    }

    /// The reduced matrix of `--quick` (under a minute): every model, echo and 64 KiB
    /// downloads, at 10 and 100 connections, 0.25 s warmup and 0.5 s measured.
    pub fn quick() -> Self {
        Plan {
            models: Model::ALL.to_vec(),
            workloads: vec![Workload::Echo64, Workload::Download64K],
            connections: vec![10, 100],
            warmup: Duration::from_millis(250),
            duration: Duration::from_millis(500),
            rounds: 1,
        }
    }

    /// Every point of one round, in the order they run: workload by workload, connection
    /// count by count, and within each the models in an order that rotates from one step to
    /// the next (and from one round to the next), so that no model always runs first (or
    /// right after the heaviest).
    pub fn points(&self) -> Vec<(Workload, usize, Model)> {
        self.round(0)
    }

    /// The points of round `round` (see [`Plan::points`]).
    pub fn round(&self, round: usize) -> Vec<(Workload, usize, Model)> {
        let mut points = Vec::new();
        let mut step = round;
        for &workload in &self.workloads {
            for &conns in &self.connections {
                let n = self.models.len();
                for i in 0..n {
                    points.push((workload, conns, self.models[(i + step) % n]));
                }
                step += 1;
            }
        }
        points
    }

    /// The expected time of one point.
    pub fn point_time(&self, conns: usize) -> Duration {
        self.warmup + self.duration + overhead(conns)
    }

    /// The expected time of every round.
    pub fn expected(&self) -> Duration {
        let round: Duration = self
            .points()
            .iter()
            .map(|&(_, conns, _)| self.point_time(conns))
            .sum();
        round * self.rounds.max(1) as u32
    }

    /// The largest connection count.
    pub fn max_connections(&self) -> usize {
        self.connections.iter().copied().max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_under_a_minute_and_full_states_its_size() {
        assert!(Plan::quick().expected() < Duration::from_secs(45));
        let full = Plan::full();
        assert_eq!(full.points().len(), 6 * 3 * 5);
        let minutes = full.expected().as_secs_f64() / 60.0;
        assert!((5.0..20.0).contains(&minutes), "{minutes}");
    }

    #[test]
    fn model_order_rotates() {
        let points = Plan::quick().points();
        assert_eq!(points.len(), 24);
        assert_eq!(points[0].2, Model::Threads);
        assert_eq!(points[6].2, Model::Pool);
        // Every step still runs every model once.
        let step: std::collections::HashSet<_> = points[6..12].iter().map(|p| p.2).collect();
        assert_eq!(step.len(), 6);
    }

    #[test]
    fn workload_names() {
        for w in Workload::ALL {
            assert_eq!(w.name().parse(), Ok(w));
        }
        assert!("echo".parse::<Workload>().is_err());
    }
}
