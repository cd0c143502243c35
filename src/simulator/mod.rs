//! A Gladly API simulator for tests, the demo and benchmarks.
