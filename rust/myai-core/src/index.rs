//! index (under construction)
