//! `Watch`: the blocking iterator over one name's statuses.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use dubbo_health_core::{HeapRegistry, ServingStatus};
use futures_core::Stream;
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

/// Opens the core stream for `name`.
pub(crate) fn open(
    py: Python<'_>,
    registry: &Arc<HeapRegistry>,
    name: String,
) -> PyResult<Pin<Box<CoreWatch>>> {
    CoreWatch::new(Arc::clone(registry), name)
        .map(Box::pin)
        .map_err(|err| pyobjects::error(py, err))
}

/// A waker that signals a condition variable: the thread waiting in `__next__` wakes up.
#[derive(Debug, Default)]
struct Signal {
    woken: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    /// Waits until woken or until `until`; returns whether it was woken (and resets the flag).
    fn wait_until(&self, until: Instant) -> bool {
        let mut woken = lock(&self.woken);
        while !*woken {
            let now = Instant::now();
            if now >= until {
                return false;
            }
            woken = self
                .cond
                .wait_timeout(woken, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *woken = false;
        true
    }
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *lock(&self.woken) = true;
        self.cond.notify_all();
    }
}

/// What one wait produced.
enum Step {
    Item(ServingStatus),
    End,
    Slice,
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
    /// `None` once closed or ended.
    stream: Mutex<Option<Pin<Box<CoreWatch>>>>,
    signal: Arc<Signal>,
    closed: AtomicBool,
}

impl Watch {
    pub(crate) fn new(
        py: Python<'_>,
        registry: &Arc<HeapRegistry>,
        name: String,
        timeout: Option<Duration>,
    ) -> PyResult<Self> {
        let stream = open(py, registry, name.clone())?;
        Ok(Self {
            name,
            timeout,
            stream: Mutex::new(Some(stream)),
            signal: Arc::default(),
            closed: AtomicBool::new(false),
        })
    }

    /// Polls and waits, with the GIL released, until an item, the end, or `until`.
    fn wait(&self, until: Instant) -> Step {
        let waker = Waker::from(Arc::clone(&self.signal));
        let mut cx = Context::from_waker(&waker);
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Step::End;
            }
            {
                let mut stream = lock(&self.stream);
                let Some(s) = stream.as_mut() else {
                    return Step::End;
                };
                match s.as_mut().poll_next(&mut cx) {
                    Poll::Ready(Some(status)) => return Step::Item(status),
                    Poll::Ready(None) => {
                        *stream = None;
                        return Step::End;
                    }
                    Poll::Pending => {}
                }
            }
            if !self.signal.wait_until(until) {
                return Step::Slice;
            }
        }
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
        self.closed.load(Ordering::Acquire) || lock(&self.stream).is_none()
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
            match py.detach(|| self.wait(until)) {
                Step::Item(status) => return pyobjects::status(py, status).map(Some),
                Step::End => return Ok(None),
                Step::Slice => {}
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
        self.closed.store(true, Ordering::Release);
        let stream = lock(&self.stream).take();
        drop(stream);
        self.signal.wake_by_ref();
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
