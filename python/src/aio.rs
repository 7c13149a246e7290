//! `AsyncWatch`: the asyncio iterator over one name's statuses.
//!
//! `__anext__` polls the core stream. When it is pending it returns a fresh asyncio future
//! and leaves a waker behind; when the core wakes that waker (from whichever thread called
//! `set`), it schedules [`WakeUp`] on the event loop with `loop.call_soon_threadsafe`, and
//! `WakeUp` polls again on the loop's thread and completes the future. No thread and no
//! second runtime per watch; a burst of changes schedules one wake-up.
//!
//! Ownership is one-way so that dropping the Python object frees everything: the waker holds
//! the shared state weakly, so `AsyncWatch` → stream → waker never forms a cycle.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use dubbo_health_core::{HeapRegistry, ServingStatus};
use futures_core::Stream;
use pyo3::exceptions::{PyRuntimeError, PyStopAsyncIteration};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::PyTraverseError;

use crate::pyobjects;
use crate::watch::{lock, open, CoreWatch};

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    GET_RUNNING_LOOP
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?
        .bind(py)
        .call0()
}

/// State shared between the Python object and its wake-ups.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// `None` once closed or ended.
    stream: Option<Pin<Box<CoreWatch>>>,
    /// The future the current `__anext__` returned, while it is not done.
    pending: Option<Py<PyAny>>,
    /// The waker for the loop the watch was last polled on.
    waker: Option<(Py<PyAny>, Arc<LoopWaker>)>,
}

/// A [`Waker`] that schedules [`WakeUp`] on one asyncio event loop.
#[derive(Debug)]
struct LoopWaker {
    event_loop: Py<PyAny>,
    wake_up: Py<WakeUp>,
    /// Set while a wake-up is scheduled and has not run yet, so a burst schedules one.
    scheduled: Arc<AtomicBool>,
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        // During interpreter shutdown there is nobody left to wake.
        let scheduled = Python::try_attach(|py| {
            self.event_loop
                .call_method1(py, "call_soon_threadsafe", (self.wake_up.clone_ref(py),))
                .is_ok()
        });
        if scheduled != Some(true) {
            // The loop is closed (or Python is gone): allow a later wake to try again.
            self.scheduled.store(false, Ordering::Release);
        }
    }
}

/// The callback a [`LoopWaker`] schedules: polls again on the loop's thread.
#[pyclass(module = "dubbo_health._native", frozen)]
#[derive(Debug)]
pub(crate) struct WakeUp {
    shared: Weak<Shared>,
    scheduled: Arc<AtomicBool>,
}

#[pymethods]
impl WakeUp {
    /// Runs on the loop: scheduled by the waker, and as the done callback of the pending
    /// future, so that a cancelled future is let go at once (it holds the cancelled task's
    /// traceback, and through it the frame that holds this watch).
    #[pyo3(signature = (*_future))]
    fn __call__(&self, py: Python<'_>, _future: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.scheduled.store(false, Ordering::Release);
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        // No Python code runs while the lock is held (see `AsyncWatch`).
        let Some(future) = lock(&shared.state).pending.take() else {
            return Ok(());
        };
        if future.call_method0(py, "done")?.is_truthy(py)? {
            // Cancelled by its task.
            return Ok(());
        }
        let outcome = {
            let mut state = lock(&shared.state);
            match poll(&mut state) {
                Poll::Ready(outcome) => outcome,
                Poll::Pending => {
                    state.pending = Some(future);
                    return Ok(());
                }
            }
        };
        complete(py, future.bind(py), outcome)
    }
}

/// Completes `future` with `outcome`: the status, or `StopAsyncIteration` at the end.
fn complete(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    outcome: Option<ServingStatus>,
) -> PyResult<()> {
    match outcome {
        Some(status) => future.call_method1("set_result", (pyobjects::status(py, status)?,))?,
        None => future.call_method1(
            "set_exception",
            (PyStopAsyncIteration::new_err(()).into_value(py),),
        )?,
    };
    Ok(())
}

/// Polls the stream with the stored waker; `Ready(None)` once it is closed or ended.
fn poll(state: &mut State) -> Poll<Option<ServingStatus>> {
    let Some(stream) = state.stream.as_mut() else {
        return Poll::Ready(None);
    };
    let Some((_, waker)) = &state.waker else {
        return Poll::Pending;
    };
    let waker = Waker::from(Arc::clone(waker));
    match stream.as_mut().poll_next(&mut Context::from_waker(&waker)) {
        Poll::Ready(None) => {
            state.stream = None;
            Poll::Ready(None)
        }
        other => other,
    }
}

/// An asyncio iterator over the statuses of one name (`async for status in ...`).
///
/// The first item is the current status (`SERVICE_UNKNOWN` when the name is not
/// registered), then one item per change. Dropping the object (or `close()`) frees the
/// watch; a task cancelled while it waits leaves nothing behind.
#[pyclass(module = "dubbo_health._native", frozen, weakref)]
#[derive(Debug)]
pub(crate) struct AsyncWatch {
    name: String,
    shared: Arc<Shared>,
}

impl AsyncWatch {
    pub(crate) fn new(
        py: Python<'_>,
        registry: &Arc<HeapRegistry>,
        name: String,
    ) -> PyResult<Self> {
        let stream = open(py, registry, name.clone())?;
        Ok(Self {
            name,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    stream: Some(stream),
                    pending: None,
                    waker: None,
                }),
            }),
        })
    }
}

#[pymethods]
impl AsyncWatch {
    /// The watched name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Whether the watch has been closed or has ended.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.shared.state).stream.is_none()
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = running_loop(py)?;
        // Python code may let other threads run, and they may want this lock: so it is
        // only ever held around Rust code, and Python objects are dropped after it.
        let previous = lock(&self.shared.state).pending.take();
        if let Some(previous) = previous {
            if !previous.call_method0(py, "done")?.is_truthy(py)? {
                lock(&self.shared.state).pending = Some(previous);
                return Err(PyRuntimeError::new_err(
                    "anext() is already waiting on this watch",
                ));
            }
        }
        let current = lock(&self.shared.state)
            .waker
            .as_ref()
            .map(|(l, _)| l.clone_ref(py));
        let mut new_waker = None;
        if !current.is_some_and(|l| l.bind(py).is(&event_loop)) {
            let scheduled = Arc::new(AtomicBool::new(false));
            let wake_up = Py::new(
                py,
                WakeUp {
                    shared: Arc::downgrade(&self.shared),
                    scheduled: Arc::clone(&scheduled),
                },
            )?;
            let waker = Arc::new(LoopWaker {
                event_loop: event_loop.clone().unbind(),
                wake_up,
                scheduled,
            });
            new_waker = Some((event_loop.clone().unbind(), waker));
        }
        let future = event_loop.call_method0("create_future")?;
        let mut replaced = None;
        let mut wake_up = None;
        let outcome = {
            let mut state = lock(&self.shared.state);
            if let Some(w) = new_waker {
                replaced = state.waker.replace(w);
            }
            let outcome = poll(&mut state);
            if outcome.is_pending() {
                state.pending = Some(future.clone().unbind());
                wake_up = state.waker.as_ref().map(|(_, w)| w.wake_up.clone_ref(py));
            }
            outcome
        };
        drop(replaced);
        match outcome {
            Poll::Ready(Some(status)) => {
                complete(py, &future, Some(status))?;
                Ok(future)
            }
            Poll::Ready(None) => Err(PyStopAsyncIteration::new_err(())),
            Poll::Pending => {
                if let Some(wake_up) = wake_up {
                    future.call_method1("add_done_callback", (wake_up,))?;
                }
                Ok(future)
            }
        }
    }

    /// Ends the iteration (a waiting `async for` stops) and frees the watch.
    fn close(&self) {
        let (stream, waker) = {
            let mut state = lock(&self.shared.state);
            let waker = if state.pending.is_some() {
                state.waker.as_ref().map(|(_, w)| Arc::clone(w))
            } else {
                None
            };
            (state.stream.take(), waker)
        };
        drop(stream);
        // A pending `__anext__` finishes with StopAsyncIteration, on its own loop.
        if let Some(waker) = waker {
            waker.wake_by_ref();
        }
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { "closed" } else { "open" };
        format!("AsyncWatch({:?}, {state})", self.name)
    }

    /// The pending future can close a cycle (future → its task → the task's frame → this
    /// watch), so the garbage collector is shown it. A lock held elsewhere means the
    /// future is in use right now: it is skipped this round.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(state) = self.shared.state.try_lock() {
            visit.call(&state.pending)?;
        }
        Ok(())
    }

    fn __clear__(&self) {
        let pending = lock(&self.shared.state).pending.take();
        drop(pending);
    }
}
