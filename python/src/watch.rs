//! `Watch`: the blocking iterator over one name's statuses, on the core [`Bridge`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dubbo_health_core::bridge::{Bridge, RecvTimeoutError};
use dubbo_health_core::HeapRegistry;
use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::pyobjects;

/// The core stream every watch object drives.
pub(crate) type CoreWatch = dubbo_health_core::Watch<Arc<HeapRegistry>, String>;

/// How long one wait on the main thread may last with the GIL released before signals
/// (Ctrl-C) are checked again.
const SLICE: Duration = Duration::from_millis(50);
/// The same on other threads, where Python runs no signal handlers: a change or `close()`
/// wakes the waiter anyway, so this only bounds how long a lost wake-up could cost.
const SLICE_OFF_MAIN: Duration = Duration::from_secs(1);

static THREADING: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

/// Whether the calling thread is Python's main thread (the one signal handlers run on).
fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let (current, main) = THREADING.get_or_try_init(py, || {
        let threading = py.import("threading")?;
        Ok::<_, PyErr>((
            threading.getattr("current_thread")?.unbind(),
            threading.getattr("main_thread")?.unbind(),
        ))
    })?;
    Ok(current.call0(py)?.is(&main.call0(py)?))
}

/// Locks `m`, ignoring poisoning: nothing here leaves the data half-updated.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the core stream for `name` behind a bridge (its first status is ready at once).
pub(crate) fn open(py: Python<'_>, registry: &Arc<HeapRegistry>, name: String) -> PyResult<Bridge> {
    CoreWatch::new(Arc::clone(registry), name)
        .map(Bridge::new)
        .map_err(|err| pyobjects::error(py, err))
}

/// A blocking iterator over the statuses of one name.
///
/// The first item is the current status (`SERVICE_UNKNOWN` when the name is not
/// registered), then one item per change. `close()` ends it from any thread.
#[pyclass(module = "dubbo_health._native", frozen, weakref)]
#[derive(Debug)]
pub(crate) struct Watch {
    name: String,
    timeout: Option<Duration>,
    bridge: Bridge,
}

impl Watch {
    pub(crate) fn new(
        py: Python<'_>,
        registry: &Arc<HeapRegistry>,
        name: String,
        timeout: Option<Duration>,
    ) -> PyResult<Self> {
        let bridge = open(py, registry, name.clone())?;
        Ok(Self {
            name,
            timeout,
            bridge,
        })
    }
}

#[pymethods]
impl Watch {
    /// The watched name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether the watch has been closed or has ended.
    #[getter]
    fn closed(&self) -> bool {
        self.bridge.is_closed()
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let slice = if on_main_thread(py)? {
            SLICE
        } else {
            SLICE_OFF_MAIN
        };
        loop {
            let now = Instant::now();
            let until = match deadline {
                Some(d) => d.min(now + slice),
                None => now + slice,
            };
            // The GIL is released while the thread is parked in the bridge.
            match py.detach(|| self.bridge.recv_deadline(until)) {
                Ok(status) => return pyobjects::status(py, status).map(Some),
                Err(RecvTimeoutError::Closed) => return Ok(None),
                Err(RecvTimeoutError::Timeout) => {}
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(PyTimeoutError::new_err(format!(
                    "no change of {:?} within the timeout",
                    self.name
                )));
            }
        }
    }

    /// Ends the iteration (also one blocked in another thread) and frees the watch.
    fn close(&self) {
        self.bridge.close();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("Watch({:?}, {state})", self.name)
    }
}
