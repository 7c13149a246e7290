//! The library half of the `dubbo-health` command: the stdin [`control`] protocol, which
//! `dubbo-health serve --control-stdin` and the hosts of the project's tests (the
//! `greeter_host` example) read their statuses from.
//!
//! The command itself is this package's `dubbo-health` binary; see `dubbo-health --help`.
//! Nothing here is needed to mount or serve the health service: that is
//! `dubbo-health-tonic`, which has no command-line, signal or stdin code.

pub mod control;
