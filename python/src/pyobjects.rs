//! Python objects defined by the pure-Python half of the package (`dubbo_health._types`):
//! the `ServingStatus` and `SetOutcome` enums and the exception classes, looked up once.

use dubbo_health_core::{Error, ServingStatus, SetOutcome};
use pyo3::call::PyCallArgs;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

const TYPES_MODULE: &str = "dubbo_health._types";

/// The four `ServingStatus` members, indexed by wire number.
static STATUSES: PyOnceLock<[Py<PyAny>; 4]> = PyOnceLock::new();
/// The three `SetOutcome` members: changed, unchanged, ignored.
static OUTCOMES: PyOnceLock<[Py<PyAny>; 3]> = PyOnceLock::new();

fn members<const N: usize>(
    py: Python<'_>,
    cell: &'static PyOnceLock<[Py<PyAny>; N]>,
    class: &str,
    names: [&str; N],
) -> PyResult<&'static [Py<PyAny>; N]> {
    cell.get_or_try_init(py, || {
        let class = py.import(TYPES_MODULE)?.getattr(class)?;
        let mut out = Vec::with_capacity(N);
        for name in names {
            out.push(class.getattr(name)?.unbind());
        }
        Ok::<_, PyErr>(
            out.try_into()
                .unwrap_or_else(|_| unreachable!("exactly N names")),
        )
    })
}

/// The Python `ServingStatus` member for `status`.
pub(crate) fn status(py: Python<'_>, status: ServingStatus) -> PyResult<Bound<'_, PyAny>> {
    let all = members(
        py,
        &STATUSES,
        "ServingStatus",
        ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"],
    )?;
    // `as_i32` is 0..=3 for every status.
    let index = usize::try_from(status.as_i32()).unwrap_or(0);
    Ok(all[index].bind(py).clone())
}

/// The Python `SetOutcome` member for `outcome`.
pub(crate) fn outcome(py: Python<'_>, outcome: SetOutcome) -> PyResult<Bound<'_, PyAny>> {
    let all = members(
        py,
        &OUTCOMES,
        "SetOutcome",
        ["CHANGED", "UNCHANGED", "IGNORED"],
    )?;
    let index = match outcome {
        SetOutcome::Changed => 0,
        SetOutcome::Unchanged => 1,
        SetOutcome::Ignored => 2,
    };
    Ok(all[index].bind(py).clone())
}

/// Builds an instance of the exception class `name` from `dubbo_health._types`.
pub(crate) fn exception<'py, A: PyCallArgs<'py>>(py: Python<'py>, name: &str, args: A) -> PyErr {
    let built = py
        .import(TYPES_MODULE)
        .and_then(|m| m.getattr(name))
        .and_then(|class| class.cast_into::<PyType>().map_err(PyErr::from))
        .and_then(|class| class.call1(args));
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

/// The Python exception for a core error.
pub(crate) fn error(py: Python<'_>, err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::NameTooLong { len } => exception(
            py,
            "NameTooLongError",
            (message, len, dubbo_health_core::MAX_NAME),
        ),
        Error::Full => exception(py, "RegistryFull", (message,)),
        Error::InvalidStatus => exception(py, "InvalidStatusError", (message,)),
        Error::NotFound => exception(py, "ServiceNotFoundError", (message,)),
        Error::InvalidName => exception(py, "InvalidNameError", (message,)),
        _ => PyValueError::new_err(message),
    }
}

/// The Python exception for a failed RPC: `RpcError(code, message)`.
pub(crate) fn rpc_error(py: Python<'_>, code: u32, message: String) -> PyErr {
    exception(py, "RpcError", (code, message))
}
