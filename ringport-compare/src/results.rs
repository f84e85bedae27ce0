//! The results of a comparison as a whole: the machine, the plan and every point; what
//! `ringport compare --json` prints.

use std::io;

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::point::Point;
use crate::system::Machine;

/// Version of the JSON schema (documented in `docs/MODELS.md`).
pub const SCHEMA: &str = "ringport-compare/1";

/// Everything a comparison measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: String,
    /// What it ran on.
    pub machine: Machine,
    /// What it ran.
    pub plan: Plan,
    /// Threads of the pool model.
    pub pool_threads: usize,
    /// One per model, workload and connection count, in the order of [`Plan::points`].
    pub points: Vec<Point>,
}

impl Results {
    /// Results saved as JSON (`results.json`), to draw their charts and page again.
    ///
    /// # Errors
    /// When the text is not results of this schema.
    pub fn from_json(text: &str) -> io::Result<Self> {
        let results: Results = serde_json::from_str(text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if results.schema != SCHEMA {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("schema {:?}, expected {SCHEMA:?}", results.schema),
            ));
        }
        Ok(results)
    }

    /// The results as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize")
    }

    /// The point of `model` under `workload` at `connections`.
    pub fn point(&self, model: &str, workload: &str, connections: usize) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.model == model && p.workload == workload && p.connections == connections)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Workload;
    use crate::point::Point;
    use ringport_models::Model;

    #[test]
    fn json_round_trip() {
        let results = Results {
            schema: SCHEMA.to_owned(),
            machine: Machine {
                cpus: 2,
                kernel: "Linux 6.1".into(),
                pinned: true,
                server_cpus: 1,
                fd_limit: 20_000,
                notes: vec!["a note".into()],
            },
            plan: Plan::quick(),
            pool_threads: 256,
            points: vec![Point::failed(
                Model::Pool,
                Workload::Download1M,
                10,
                "why".into(),
            )],
        };
        let back = Results::from_json(&results.to_json()).unwrap();
        assert_eq!(back, results);
        assert!(back.point("pool", "download-1MiB", 10).is_some());
        let other = results.to_json().replace(SCHEMA, "other/9");
        assert!(Results::from_json(&other).is_err());
        assert!(Results::from_json("{}").is_err());
    }
}
