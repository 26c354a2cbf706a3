//! Posting lists: sorted internal doc numbers with term frequencies, cut into blocks of
//! [`BLOCK`] postings whose metadata lets a cursor skip a block and bound its best score.

/// Postings per block: small enough for tight block bounds, large enough that the block
/// metadata stays a small fraction of the list.
pub(crate) const BLOCK: usize = 128;

/// What a cursor needs to know about a block without reading it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BlockMeta {
    /// The largest doc number in the block.
    pub last_doc: u32,
    /// The largest term frequency in the block.
    pub max_tf: u32,
    /// The smallest `doc_len / tf` in the block.
    pub min_ratio: f32,
}

impl BlockMeta {
    fn new(doc: u32, tf: u32, dl: u32) -> Self {
        BlockMeta {
            last_doc: doc,
            max_tf: tf,
            min_ratio: dl as f32 / tf as f32,
        }
    }

    fn include(&mut self, doc: u32, tf: u32, dl: u32) {
        self.last_doc = doc;
        self.max_tf = self.max_tf.max(tf);
        self.min_ratio = self.min_ratio.min(dl as f32 / tf as f32);
    }

    /// An upper bound of `tf / (tf + alpha + beta * dl)` over the block's postings.
    ///
    /// The BM25 saturation is `1 / (1 + alpha/tf + beta * dl/tf)`; its denominator is at least
    /// `1 + alpha/max_tf + beta * min(dl/tf)`, and that holds whatever `avgdl` is, so the
    /// metadata never goes stale as documents come and go (removals only loosen it).
    #[inline]
    pub fn bound(&self, alpha: f32, beta: f32) -> f32 {
        1.0 / (1.0 + alpha / self.max_tf as f32 + beta * self.min_ratio)
    }
}

/// The posting list of one term.
#[derive(Clone, Debug, Default)]
pub(crate) struct Postings {
    pub docs: Vec<u32>,
    pub tfs: Vec<u32>,
    pub blocks: Vec<BlockMeta>,
    /// Live documents containing the term (dead postings stay until compaction).
    pub df: u32,
}

impl Postings {
    /// Appends a posting; `doc` must exceed every doc number already in the list.
    #[inline]
    pub fn push(&mut self, doc: u32, tf: u32, dl: u32) {
        if self.docs.len() % BLOCK == 0 {
            self.blocks.push(BlockMeta::new(doc, tf, dl));
        } else if let Some(m) = self.blocks.last_mut() {
            m.include(doc, tf, dl);
        }
        self.docs.push(doc);
        self.tfs.push(tf);
        self.df += 1;
    }

    /// Rebuilds the block metadata from the postings (after compaction or loading).
    pub fn rebuild_blocks(&mut self, doc_lens: &[u32]) {
        self.blocks.clear();
        for (i, (&d, &tf)) in self.docs.iter().zip(&self.tfs).enumerate() {
            let dl = doc_lens.get(d as usize).copied().unwrap_or(0);
            if i % BLOCK == 0 {
                self.blocks.push(BlockMeta::new(d, tf, dl));
            } else if let Some(m) = self.blocks.last_mut() {
                m.include(d, tf, dl);
            }
        }
    }

    /// The bound of [`BlockMeta::bound`] over the whole list.
    pub fn bound(&self, alpha: f32, beta: f32) -> f32 {
        self.blocks
            .iter()
            .map(|m| m.bound(alpha, beta))
            .fold(0.0, f32::max)
    }

    pub fn heap_bytes(&self) -> usize {
        self.docs.capacity() * 4
            + self.tfs.capacity() * 4
            + self.blocks.capacity() * std::mem::size_of::<BlockMeta>()
    }
}
