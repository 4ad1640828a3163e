//! Error flags: how a kernel reports bad input without an extra submit. A kernel that checks
//! its input (an int32 division by zero, a sparse label, a gather index or a segment id out of
//! range) declares the binding of `shaders/error_flag.wgsl` after its output and raises a code
//! there. Each such dispatch of a run gets its own 16-byte flag (at an aligned offset of a
//! pooled buffer, cleared in stream order), the flags are copied out with the run's fetches,
//! and a raised code becomes the dispatching node's `InvalidArgument` error, as TF's kernels
//! give.

use std::sync::Arc;

use super::pool::{BufferKind, BufferPool};
use crate::error::{Error, Result};

use super::shader_files::ERROR_FLAG as FLAG_TEMPLATE;

/// The name of the flag's global in WGSL, which marks a kernel as checking.
pub(crate) const FLAG_GLOBAL: &str = "wgflow_error";
/// The bytes of one flag (four u32 words).
pub(crate) const FLAG_BYTES: u64 = 16;
/// Flags per pooled buffer.
const SLOTS: u64 = 64;

/// The error flag snippet for a kernel whose output binds to `output_binding`.
pub fn error_flag_wgsl(output_binding: u32) -> String {
    let code: Vec<&str> = FLAG_TEMPLATE.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    code.join("\n").replace("FLAG_BINDING", &(output_binding + 1).to_string())
}

/// The error a raised flag stands for (the words as `shaders/error_flag.wgsl` writes them).
fn error_of(words: &[u32]) -> Option<Error> {
    let [code, high, bound, negative] = *words else { return None };
    match code {
        0 => None,
        1 => Some(Error::invalid_argument("Integer division by zero")),
        2 => {
            // TF names the smallest label when one is negative, else the largest.
            let label = if negative != 0 { -i64::from(negative) } else { i64::from(high) };
            Some(Error::invalid_argument(format!(
                "Received a label value of {label} which is outside the valid range of [0, {bound})."
            )))
        }
        // A gather index or a segment id (TF's GPU kernels do not check them): the smallest
        // negative value, else the largest.
        3 | 4 => {
            let v = if negative != 0 { -i64::from(negative) } else { i64::from(high) };
            let what = if code == 3 { "indices" } else { "segment_ids" };
            Some(Error::invalid_argument(format!("{what} contains {v}, which is not in [0, {bound})")))
        }
        other => Some(Error::internal(format!("a GPU kernel raised the unknown error code {other}"))),
    }
}

/// A buffer of flags and the node that dispatched each one used so far.
struct Block {
    buffer: Arc<wgpu::Buffer>,
    nodes: Vec<String>,
}

/// The flags of one run's checking dispatches.
#[derive(Default)]
pub(crate) struct ErrorFlags {
    blocks: Vec<Block>,
}

/// The copies of the flags to read back after a submit.
pub(crate) struct FlagReads {
    reads: Vec<(Arc<wgpu::Buffer>, u64, Vec<String>)>,
    stride: u64,
}

impl ErrorFlags {
    /// A fresh flag for a dispatch of `node`: its buffer and offset. A new buffer is cleared
    /// by `encoder` before the dispatch that uses it.
    pub(crate) fn slot(
        &mut self,
        pool: &mut BufferPool,
        encoder: &mut wgpu::CommandEncoder,
        stride: u64,
        node: &str,
    ) -> Result<(Arc<wgpu::Buffer>, u64)> {
        if self.blocks.last().is_none_or(|b| b.nodes.len() as u64 == SLOTS) {
            let buffer = pool.take_kind(SLOTS * stride, BufferKind::Storage)?;
            encoder.clear_buffer(&buffer, 0, Some(SLOTS * stride));
            self.blocks.push(Block { buffer, nodes: Vec::new() });
        }
        let block = self.blocks.last_mut().ok_or_else(|| Error::internal("no error flag block"))?;
        let offset = block.nodes.len() as u64 * stride;
        block.nodes.push(node.to_string());
        Ok((block.buffer.clone(), offset))
    }

    /// Records copies of the used flags into staging buffers (before the submit). The flag
    /// buffers go to `after`, to return to the pool once the submit is done.
    pub(crate) fn copy_out(
        &mut self,
        pool: &mut BufferPool,
        encoder: &mut wgpu::CommandEncoder,
        stride: u64,
        after: &mut Vec<Arc<wgpu::Buffer>>,
    ) -> Result<FlagReads> {
        let mut reads = Vec::with_capacity(self.blocks.len());
        for block in self.blocks.drain(..) {
            let bytes = block.nodes.len() as u64 * stride;
            let staging = pool.take_kind(bytes, BufferKind::Staging)?;
            encoder.copy_buffer_to_buffer(&block.buffer, 0, &staging, 0, bytes);
            after.push(block.buffer);
            reads.push((staging, bytes, block.nodes));
        }
        Ok(FlagReads { reads, stride })
    }
}

impl FlagReads {
    /// Whether there is nothing to read.
    pub(crate) fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// The staging buffers and the bytes to map from each.
    pub(crate) fn buffers(&self) -> impl Iterator<Item = (&Arc<wgpu::Buffer>, u64)> {
        self.reads.iter().map(|(b, n, _)| (b, *n))
    }

    /// Checks the flags read from each staging buffer (in [`FlagReads::buffers`] order): the
    /// error of the first raised one, in dispatch order, tied to its node. The staging buffers
    /// go to `after`.
    pub(crate) fn check(self, words: Vec<Vec<u32>>, after: &mut Vec<Arc<wgpu::Buffer>>) -> Result<()> {
        let per_slot = (self.stride / 4) as usize;
        let mut first = None;
        for ((staging, _, nodes), words) in self.reads.into_iter().zip(words) {
            after.push(staging);
            for (slot, node) in nodes.iter().enumerate() {
                let at = slot * per_slot;
                if first.is_none() {
                    first = words.get(at..at + 4).and_then(error_of).map(|e| e.at(node));
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raised_codes_become_tf_errors() {
        assert!(error_of(&[0, 0, 0, 0]).is_none());
        let e = error_of(&[1, 0, 0, 0]).map(|e| e.message);
        assert_eq!(e.as_deref(), Some("Integer division by zero"));
        let e = error_of(&[2, 5, 3, 1]).map(|e| e.message);
        assert_eq!(e.as_deref(), Some("Received a label value of -1 which is outside the valid range of [0, 3)."));
        let e = error_of(&[2, 7, 3, 0]).map(|e| e.message);
        assert_eq!(e.as_deref(), Some("Received a label value of 7 which is outside the valid range of [0, 3)."));
        let e = error_of(&[2, 0, 3, 1 << 31]).map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("Received a label value of -2147483648 which is outside the valid range of [0, 3).")
        );
        let e = error_of(&[3, 9, 4, 0]).map(|e| e.message);
        assert_eq!(e.as_deref(), Some("indices contains 9, which is not in [0, 4)"));
        let e = error_of(&[4, 9, 4, 3]).map(|e| e.message);
        assert_eq!(e.as_deref(), Some("segment_ids contains -3, which is not in [0, 4)"));
        assert_eq!(error_of(&[9, 0, 0, 0]).map(|e| e.code), Some(crate::error::Code::Internal));
    }

    #[test]
    fn the_snippet_binds_after_the_output() {
        let s = error_flag_wgsl(3);
        assert!(s.contains("@binding(4) var<storage, read_write> wgflow_error"), "{s}");
        assert!(!s.contains("FLAG_BINDING"));
    }
}
