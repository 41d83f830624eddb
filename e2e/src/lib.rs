//! End-to-end tests live in `tests/it/`: each starts devstack in-process and the compiled webhook worker
//! in `wrangler dev` (real workerd), then drives it over HTTP. Build the workers first
//! (`cargo xtask test` does).
