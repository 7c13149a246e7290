//! Python bindings for dubbo-health: the `dubbo_health._native` extension module.
//!
//! The public Python API lives in the pure-Python package `dubbo_health`, which re-exports
//! the classes defined here next to its own `ServingStatus` enum and exception classes.
//! Nothing in this crate is meant to be used from Rust.
//!
//! # Implementation Notes
//!
//! - Every class is `frozen`: the core registry synchronizes itself, and the little mutable
//!   state a watch iterator has sits behind a [`std::sync::Mutex`].
//! - Statuses cross the boundary as the members of the Python `ServingStatus` enum, looked up
//!   once per interpreter (module `pyobjects`).
//! - Both watch kinds sit on the core's `bridge::Bridge`: blocking watches park in it with
//!   the GIL released; asyncio watches poll it with a waker that needs no GIL and wakes
//!   the loop through one socket pair per loop (`loop.add_reader`), so neither needs a
//!   thread or a second runtime. Registry calls that wake watchers release the GIL.

mod aio;
mod probes;
mod pyobjects;
mod registry;
mod server;
mod watch;
mod wire;

use pyo3::prelude::*;

/// The extension module, imported as `dubbo_health._native`.
#[pymodule]
mod _native {
    #[pymodule_export]
    use crate::aio::AsyncWatch;
    #[pymodule_export]
    use crate::probes::Probes;
    #[pymodule_export]
    use crate::registry::{service_key, Registry};
    #[pymodule_export]
    use crate::server::{serve, Server};
    #[pymodule_export]
    use crate::watch::Watch;
    #[pymodule_export]
    use crate::wire::{decode_check_request, encode_check_response, handle_check, handle_list};

    use pyo3::prelude::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("MAX_NAME", dubbo_health_core::MAX_NAME)?;
        m.add("LIST_LIMIT", dubbo_health_core::LIST_LIMIT)?;
        m.add("DEFAULT_CAPACITY", dubbo_health_core::DEFAULT_CAPACITY)?;
        Ok(())
    }
}
