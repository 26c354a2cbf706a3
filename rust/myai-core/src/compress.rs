//! compress (under construction)
