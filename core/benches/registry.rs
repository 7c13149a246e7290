//! Criterion benchmarks of the registry (filled in below).
fn main() {}
