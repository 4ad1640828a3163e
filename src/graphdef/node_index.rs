//! The import of the index ops, `Tile`, `GatherV2` (and v1 `Gather`) and
//! `UnsortedSegmentSum`, whose shape-like inputs (multiples, axis, num_segments) must be
//! constants: wgflow holds them as attributes.

use super::node::NodeIn;
use super::proto::attr_value::Value;
use crate::error::{Error, Result};
use crate::graph::Output;

impl NodeIn<'_> {
    /// `Tile` with its `multiples` (input 1) read from a constant.
    pub(super) fn tile(&self) -> Result<Output> {
        let multiples = self.const_ints(1)?;
        let multiples = multiples
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                usize::try_from(m)
                    .map_err(|_| Error::invalid_argument(format!("Expected multiples[{i}] >= 0, but got {m}")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.graph.named(&self.name).tile(self.input(0)?, &multiples)
    }

    /// `GatherV2` with its `axis` (input 2) read from a constant, or v1 `Gather` (axis 0);
    /// `batch_dims` other than 0 is not imported.
    pub(super) fn gather(&self) -> Result<Output> {
        let axis = match self.def.op.as_str() {
            "Gather" => 0,
            _ => self.const_ints(2)?.first().copied().unwrap_or(0),
        };
        if let Some(Value::I(b)) = self.attr("batch_dims").filter(|v| !matches!(v, Value::I(0))) {
            return Err(Error::unimplemented(format!(
                "Node '{}': wgflow imports GatherV2 with batch_dims 0 only, not {b}",
                self.def.name
            )));
        }
        self.graph.named(&self.name).gather(self.input(0)?, self.input(1)?, axis)
    }

    /// `UnsortedSegmentSum` with its `num_segments` (input 2) read from a constant.
    pub(super) fn segment_sum(&self) -> Result<Output> {
        let n = self.const_ints(2)?.first().copied().unwrap_or(0);
        let n = usize::try_from(n)
            .map_err(|_| Error::invalid_argument(format!("num_segments must be non-negative, got {n}")))?;
        self.graph.named(&self.name).unsorted_segment_sum(self.input(0)?, self.input(1)?, n)
    }
}
