//! Shell script generation, one pure module per shell. Only bash (which also
//! serves `sh`-compatible stages) exists so far.

pub mod bash;
