//! dedup (under construction)
