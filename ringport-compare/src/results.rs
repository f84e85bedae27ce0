//! The results of a comparison as a whole: the machine, the plan and every point; what
//! `ringport compare --json` prints.

use serde::Serialize;

use crate::plan::Plan;
use crate::point::Point;
use crate::system::Machine;

/// Version of the JSON schema (documented in `docs/MODELS.md`).
pub const SCHEMA: &str = "ringport-compare/1";

/// Everything a comparison measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Results {
    /// [`SCHEMA`].
    pub schema: &'static str,
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
