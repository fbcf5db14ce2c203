//! `.gitlab-ci.yml` → validated model → planned jobs. Pure logic: no I/O, no async.
