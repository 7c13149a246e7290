//! `AsyncWatch`: the asyncio iterator over one name's statuses, on the core bridge.
//!
//! `__anext__` polls the watch's [`Bridge`] with a waker of the running event loop. When it
//! is pending it returns a fresh asyncio future. The waker runs on whichever thread made
//! the change, inside the bridge's delivery, and needs no GIL: it marks the watch, pushes
//! it onto its loop's [`Hub`] and, for the first wake since the hub last ran, writes one
//! byte to the hub's socket pair. The loop watches the other end (`loop.add_reader`); the
//! hub's reader runs on the loop's thread with the GIL, polls each woken watch and
//! completes its future. No thread and no second runtime per watch, and a change that
//! wakes a thousand watchers of one loop costs one byte and one loop callback.
//!
//! Why no GIL on the setter's side: the waker runs while the bridge's channel holds its
//! internal lock, and the loop thread takes that lock, GIL in hand, whenever it polls. A
//! waker that waited for the GIL there (`call_soon_threadsafe` needs it) would deadlock
//! against a `set` made with the GIL released.
//!
//! Ownership is one-way so that dropping the Python object frees everything: wakers and
//! hubs hold watches weakly, so `AsyncWatch` → bridge → waker never forms a cycle.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use dubbo_health_core::bridge::Bridge;
use dubbo_health_core::{HeapRegistry, ServingStatus};
use futures_core::Stream;
use pyo3::exceptions::{PyRuntimeError, PyStopAsyncIteration};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::PyTraverseError;

use crate::pyobjects;
use crate::watch::{lock, open};

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
/// `weakref.WeakKeyDictionary` from event loop to its `LoopHub`.
static HUBS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    GET_RUNNING_LOOP
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
        })?
        .bind(py)
        .call0()
}

// === the per-loop hub ===

/// One per event loop: the socket pair the loop watches and the watches woken since the
/// hub last ran.
#[derive(Debug)]
struct Hub {
    /// Registered with `loop.add_reader`.
    reader: UnixStream,
    writer: UnixStream,
    /// Woken watches; each is listed once at a time (its `queued` flag).
    ready: Mutex<Vec<Weak<Shared>>>,
    /// A byte is (about to be) in the socket and the reader has not run since.
    signalled: AtomicBool,
}

impl Hub {
    fn new() -> std::io::Result<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(Self {
            reader,
            writer,
            ready: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
        })
    }

    /// Lists `watch` and makes the loop's reader run. Any thread, no GIL, never blocks
    /// (the list's lock is only ever held to push or to take the list).
    fn wake(&self, watch: &Arc<Shared>) {
        if !watch.queued.swap(true, SeqCst) {
            lock(&self.ready).push(Arc::downgrade(watch));
        }
        if !self.signalled.swap(true, SeqCst) {
            // Non-blocking, and at most one byte is ever unread: it cannot fail for lack
            // of room. If the loop is gone, there is nobody to wake.
            let _ = (&self.writer).write(&[1]);
        }
    }
}

/// The hub as the loop's reader callback.
#[pyclass(module = "dubbo_health._native", frozen)]
#[derive(Debug)]
pub(crate) struct LoopHub {
    hub: Arc<Hub>,
}

#[pymethods]
impl LoopHub {
    /// Runs on the loop: delivers to every watch woken since the last run.
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        // In this order. Drain, then clear the flag: clearing first would let a wake in
        // between write a byte that the drain eats, leaving the flag set with no byte to
        // run the reader ever again. A wake after the flag is cleared writes again; a wake
        // before it listed its watch before setting the flag, so the take below sees it.
        let mut sink = [0u8; 64];
        while matches!((&self.hub.reader).read(&mut sink), Ok(n) if n > 0) {}
        self.hub.signalled.store(false, SeqCst);
        let ready = std::mem::take(&mut *lock(&self.hub.ready));
        let mut first_error = None;
        for watch in ready {
            if let Some(shared) = watch.upgrade() {
                shared.queued.store(false, SeqCst);
                if let Err(err) = deliver(py, &shared) {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The hub of `event_loop`, made (and registered with the loop) on first use.
fn hub_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Hub>> {
    let hubs = HUBS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("weakref")?
                    .getattr("WeakKeyDictionary")?
                    .call0()?
                    .unbind(),
            )
        })?
        .bind(py);
    let known = hubs.call_method1("get", (event_loop,))?;
    if let Ok(hub) = known.cast::<LoopHub>() {
        return Ok(Arc::clone(&hub.get().hub));
    }
    let hub = Arc::new(Hub::new()?);
    let reader = Py::new(
        py,
        LoopHub {
            hub: Arc::clone(&hub),
        },
    )?;
    event_loop.call_method1("add_reader", (hub.reader.as_raw_fd(), reader.clone_ref(py)))?;
    hubs.set_item(event_loop, reader)?;
    Ok(hub)
}

/// The waker a watch polls its bridge with: lists it on its loop's hub.
#[derive(Debug)]
struct WatchWaker {
    hub: Arc<Hub>,
    watch: Weak<Shared>,
}

impl Wake for WatchWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(watch) = self.watch.upgrade() {
            self.hub.wake(&watch);
        }
    }
}

// === the watch ===

/// State shared between the Python object, its wakers and its loop's hub.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Listed on a hub, not yet delivered to.
    queued: AtomicBool,
}

#[derive(Debug)]
struct State {
    bridge: Bridge,
    /// The future the current `__anext__` returned, while it is not done.
    pending: Option<Py<PyAny>>,
    /// The waker for the loop the watch was last polled on.
    waker: Option<(Py<PyAny>, Waker)>,
}

/// Polls the bridge with the stored waker; `Ready(None)` once it has ended.
fn poll(state: &mut State) -> Poll<Option<ServingStatus>> {
    let State { bridge, waker, .. } = state;
    let Some((_, waker)) = waker else {
        return Poll::Pending;
    };
    Pin::new(bridge).poll_next(&mut Context::from_waker(waker))
}

/// Delivers to `shared`'s pending future, if it has one that is still waiting. On the
/// loop's thread. No Python code runs while the state lock is held, and Python objects are
/// dropped after it is released.
fn deliver(py: Python<'_>, shared: &Shared) -> PyResult<()> {
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

/// The done callback of a pending future: lets a cancelled future go at once (it holds
/// the cancelled task's traceback, and through it the frame that holds this watch).
#[pyclass(module = "dubbo_health._native", frozen)]
#[derive(Debug)]
pub(crate) struct WakeUp {
    shared: Weak<Shared>,
}

#[pymethods]
impl WakeUp {
    #[pyo3(signature = (*_future))]
    fn __call__(&self, py: Python<'_>, _future: &Bound<'_, PyTuple>) -> PyResult<()> {
        match self.shared.upgrade() {
            Some(shared) => deliver(py, &shared),
            None => Ok(()),
        }
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
        let bridge = open(py, registry, name.clone())?;
        Ok(Self {
            name,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    bridge,
                    pending: None,
                    waker: None,
                }),
                queued: AtomicBool::new(false),
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
        lock(&self.shared.state).bridge.is_closed()
    }

    /// Whether a change (or the end) has reached this watch and waits for its event loop
    /// to deliver it to the pending `__anext__`. Set by the thread that made the change,
    /// without the GIL; cleared on the loop.
    #[getter]
    fn woken(&self) -> bool {
        self.shared.queued.load(SeqCst)
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
            // A future of a loop that was closed meanwhile can never complete: let it go.
            let abandoned = || -> PyResult<bool> {
                previous
                    .call_method0(py, "get_loop")?
                    .call_method0(py, "is_closed")?
                    .is_truthy(py)
            };
            if !previous.call_method0(py, "done")?.is_truthy(py)? && !abandoned()? {
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
            let waker = Waker::from(Arc::new(WatchWaker {
                hub: hub_for(py, &event_loop)?,
                watch: Arc::downgrade(&self.shared),
            }));
            new_waker = Some((event_loop.clone().unbind(), waker));
        }
        let future = event_loop.call_method0("create_future")?;
        let mut replaced = None;
        let outcome = {
            let mut state = lock(&self.shared.state);
            if let Some(w) = new_waker {
                replaced = state.waker.replace(w);
            }
            let outcome = poll(&mut state);
            if outcome.is_pending() {
                state.pending = Some(future.clone().unbind());
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
                let wake_up = WakeUp {
                    shared: Arc::downgrade(&self.shared),
                };
                future.call_method1("add_done_callback", (wake_up,))?;
                Ok(future)
            }
        }
    }

    /// Ends the iteration (a waiting `async for` stops, on its own loop) and frees the
    /// watch. From any thread.
    fn close(&self) {
        lock(&self.shared.state).bridge.close();
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
