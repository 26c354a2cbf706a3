//! tokens (under construction)
