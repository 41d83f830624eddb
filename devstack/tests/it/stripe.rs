//! The Stripe stand-in's lifecycle, driven through its HTTP API only.
