//! chunk (under construction)
