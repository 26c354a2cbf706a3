//! normalize (under construction)
