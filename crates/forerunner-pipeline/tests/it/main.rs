//! Integration tests of `forerunner-pipeline`: golden files under
//! `test_data/`.
//!
//! Run with `UPDATE_EXPECT=1` to rewrite the `.expected` files after a
//! deliberate change, then review the diff.

mod golden;
mod robustness;
mod scale;
mod tidy;
