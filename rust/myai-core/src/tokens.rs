//! Token counting (placeholder until the tokens module lands: only the trait the chunker needs).

/// Splits text into pre-tokenization pieces and counts the tokens of each.
/// Contract: pieces are contiguous, in order, cover the text exactly, each non-empty;
/// count(text) == sum of the piece counts; and for any byte position p where text[p] == b'\n'
/// and text[p+1] is not whitespace, the pieces of text equal the pieces of text[..p] followed by
/// the pieces of text[p..] (so a long text can be split there and counted in parallel).
pub trait TokenCounter: Send + Sync {
    /// Calls f(start, end, tokens) for each piece, byte offsets into text.
    fn for_each_piece(&self, text: &str, f: &mut dyn FnMut(usize, usize, u32));
    /// Exact number of tokens of text (special tokens not added).
    fn count(&self, text: &str) -> usize;
    /// Byte end offsets of the tokens of one piece, ascending, last == piece.len().
    fn token_ends(&self, piece: &str) -> Vec<usize>;
}
