//! `Registry`: a shared handle to one core [`HeapRegistry`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use dubbo_health_core::{CapacityError, Error, HeapRegistry, ServingStatus, DEFAULT_CAPACITY};
use pyo3::exceptions::{PyMemoryError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyString};

use crate::aio::AsyncWatch;
use crate::pyobjects;
use crate::watch::Watch;

/// How many entries `repr()` shows before it writes `...`.
const REPR_ENTRIES: usize = 8;

/// A health registry: service name -> serving status, shared by every thread of the process.
#[pyclass(module = "dubbo_health._native", frozen, weakref)]
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) inner: Arc<HeapRegistry>,
}

/// Reads a status: a `ServingStatus` member or its wire number (any of the four).
pub(crate) fn parse_status(py: Python<'_>, status: &Bound<'_, PyAny>) -> PyResult<ServingStatus> {
    if !status.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "status must be a ServingStatus or an int, not {}",
            status.get_type().name()?
        )));
    }
    status
        .extract::<i32>()
        .ok()
        .and_then(ServingStatus::from_i32)
        .ok_or_else(|| {
            pyobjects::exception(
                py,
                "InvalidStatusError",
                (format!(
                    "{status} is not a serving status (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING)"
                ),),
            )
        })
}

/// Reads a status `set` accepts: not SERVICE_UNKNOWN.
fn status_arg(py: Python<'_>, status: &Bound<'_, PyAny>) -> PyResult<ServingStatus> {
    match parse_status(py, status)? {
        ServingStatus::ServiceUnknown => Err(pyobjects::error(py, Error::InvalidStatus)),
        s => Ok(s),
    }
}

/// Reads an optional timeout in seconds.
pub(crate) fn timeout_arg(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(Duration::from_secs_f64(t.min(1e9)))),
        Some(t) => Err(PyValueError::new_err(format!(
            "timeout must be a finite number of seconds >= 0, not {t}"
        ))),
    }
}

/// Reads `Registry(capacity=...)`: `None` for the default, else an int from 1 to the core's
/// maximum.
fn capacity_arg(capacity: Option<&Bound<'_, PyAny>>) -> PyResult<usize> {
    let Some(capacity) = capacity.filter(|c| !c.is_none()) else {
        return Ok(DEFAULT_CAPACITY);
    };
    if !capacity.is_instance_of::<PyInt>() || capacity.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "capacity must be an int or None, not {}",
            capacity.get_type().name()?
        )));
    }
    capacity.extract::<usize>().map_err(|_| {
        PyValueError::new_err(format!(
            "capacity must be from 1 to {}, not {capacity}",
            dubbo_health_core::MAX_CAPACITY
        ))
    })
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (capacity = None))]
    fn new(capacity: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let inner = HeapRegistry::with_capacity(capacity_arg(capacity)?).map_err(|e| match e {
            CapacityError::OutOfMemory { .. } => PyMemoryError::new_err(e.to_string()),
            _ => PyValueError::new_err(e.to_string()),
        })?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Sets the status of `name`, registering it if needed. The watchers are woken with
    /// the GIL released (as by `clear`, `shutdown`, `resume` and `end_watches`).
    fn set<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        status: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let status = status_arg(py, status)?;
        match py.detach(|| self.inner.set(name, status)) {
            Ok(outcome) => pyobjects::outcome(py, outcome),
            Err(err) => Err(pyobjects::error(py, err)),
        }
    }

    /// The status of `name`, or `None` when it is not registered (a name no registry can
    /// hold, over `MAX_NAME` bytes, included: as Rust's `get`; `check` says why).
    fn get<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.inner
            .get(name)
            .map(|status| pyobjects::status(py, status))
            .transpose()
    }

    /// The status of `name`; `ServiceNotFoundError` (a `KeyError`) when it is not registered.
    fn check<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        match self.inner.check(name) {
            Ok(status) => pyobjects::status(py, status),
            Err(err) => Err(pyobjects::error(py, err)),
        }
    }

    fn __getitem__<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.check(py, name)
    }

    /// Forgets `name`; returns whether it was registered.
    fn clear(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        py.detach(|| self.inner.clear(name))
            .map_err(|err| pyobjects::error(py, err))
    }

    /// Every name becomes NOT_SERVING; later `set` calls are ignored until `resume()`.
    fn shutdown(&self, py: Python<'_>) {
        py.detach(|| self.inner.shutdown());
    }

    /// Leaves the shut-down state: every name becomes SERVING and `set` works again.
    fn resume(&self, py: Python<'_>) {
        py.detach(|| self.inner.resume());
    }

    /// Exports `interface` (Dubbo): sets its service key in dubbo-go's and Dubbo Java's forms
    /// and the bare interface, which is SERVING while any export of it is (see docs/core.md).
    #[pyo3(signature = (interface, group = "", version = "", status = None))]
    fn export<'py>(
        &self,
        py: Python<'py>,
        interface: &str,
        group: &str,
        version: &str,
        status: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let status = match status {
            Some(s) if !s.is_none() => status_arg(py, s)?,
            _ => ServingStatus::Serving,
        };
        match py.detach(|| self.inner.export(interface, group, version, status)) {
            Ok(outcome) => pyobjects::outcome(py, outcome),
            Err(err) => Err(pyobjects::error(py, err)),
        }
    }

    /// Ends an export: its keys become NOT_SERVING (still registered), the bare interface
    /// once no export of it serves. Returns whether the export existed.
    #[pyo3(signature = (interface, group = "", version = ""))]
    fn unexport(
        &self,
        py: Python<'_>,
        interface: &str,
        group: &str,
        version: &str,
    ) -> PyResult<bool> {
        py.detach(|| self.inner.unexport(interface, group, version))
            .map_err(|err| pyobjects::error(py, err))
    }

    /// Makes `""` depend on `name`: SERVING exactly when every required name is SERVING.
    /// Returns whether it was newly required.
    fn require(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        py.detach(|| self.inner.require(name))
            .map_err(|err| pyobjects::error(py, err))
    }

    /// Undoes `require`; returns whether the name was required.
    fn unrequire(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        py.detach(|| self.inner.unrequire(name))
            .map_err(|err| pyobjects::error(py, err))
    }

    /// Whether `""` requires `name`.
    fn is_required(&self, py: Python<'_>, name: &str) -> bool {
        py.detach(|| self.inner.is_required(name))
    }

    /// Ends every watch open now, after it has delivered its pending change.
    fn end_watches(&self, py: Python<'_>) {
        py.detach(|| self.inner.end_watches());
    }

    /// Whether `shutdown()` was called (and `resume()` not since).
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.inner.is_shut_down()
    }

    /// How many names the registry can hold (`""` included): `capacity` as given to
    /// `Registry()`, `DEFAULT_CAPACITY` by default.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Every registered name with its status.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for entry in self.inner.iter() {
            dict.set_item(entry.name(), pyobjects::status(py, entry.status())?)?;
        }
        Ok(dict)
    }

    /// A blocking iterator over the statuses of `name`.
    #[pyo3(signature = (name, timeout = None))]
    fn watch(&self, py: Python<'_>, name: String, timeout: Option<f64>) -> PyResult<Watch> {
        Watch::new(py, &self.inner, name, timeout_arg(timeout)?)
    }

    /// An asyncio iterator over the statuses of `name`.
    fn watch_async(&self, py: Python<'_>, name: String) -> PyResult<AsyncWatch> {
        AsyncWatch::new(py, &self.inner, name)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> bool {
        match name.cast::<PyString>() {
            Ok(s) => match s.to_cow() {
                Ok(name) => self.inner.check(&name).is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        }
    }

    fn __repr__(&self) -> String {
        let mut out = String::from("Registry({");
        for (i, entry) in self.inner.iter().enumerate() {
            if i == REPR_ENTRIES {
                out.push_str(", ...");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{:?}: {}", entry.name(), entry.status());
        }
        out.push_str("})");
        if self.inner.is_shut_down() {
            out.insert_str(out.len() - 1, ", shut_down=True");
        }
        out
    }
}

/// The service key of a Dubbo export, `group/interface:version`: `form` `"dubbo-go"` leaves
/// the version out when empty or `0.0.0`, `"dubbo-java"` only when empty.
#[pyfunction]
#[pyo3(signature = (interface, group = "", version = "", form = "dubbo-go"))]
pub(crate) fn service_key(
    py: Python<'_>,
    interface: &str,
    group: &str,
    version: &str,
    form: &str,
) -> PyResult<String> {
    let form = match form {
        "dubbo-go" => dubbo_health_core::KeyForm::DubboGo,
        "dubbo-java" => dubbo_health_core::KeyForm::DubboJava,
        other => {
            return Err(PyValueError::new_err(format!(
                "form must be KeyForm.DUBBO_GO or KeyForm.DUBBO_JAVA, not {other:?}"
            )))
        }
    };
    dubbo_health_core::service_key(interface, group, version, form)
        .map(|key| key.as_str().to_owned())
        .map_err(|err| pyobjects::error(py, err))
}
