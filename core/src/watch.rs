//! `Watch`: the stream of one name's statuses.

use core::{
    cell::UnsafeCell,
    fmt,
    marker::PhantomPinned,
    ops::Deref,
    pin::Pin,
    ptr::NonNull,
    task::{Context, Poll, Waker},
};

use futures_core::{FusedStream, Stream};

use crate::{
    list::{ListId, Node, UNKNOWN_LIST},
    registry::{check_len, hash, State},
    Error, Registry, ServingStatus,
};

/// A registry handle whose target never moves and is the same on every `deref`.
///
/// A parked [`Watch`] links a node into the registry it points at and must find the same
/// registry again to unlink it, so the handle must not change its target.
///
/// # Safety
///
/// Implementors promise that `deref` returns the same address for as long as the value (or
/// any value it is moved into) lives.
pub unsafe trait StableDeref: Deref {}

// Safety: a shared reference always points at the same place.
unsafe impl<T: ?Sized> StableDeref for &T {}

#[cfg(feature = "std")]
// Safety: an `Arc`'s allocation does not move while the `Arc` lives.
unsafe impl<T: ?Sized> StableDeref for std::sync::Arc<T> {}

#[cfg(feature = "std")]
// Safety: an `Rc`'s allocation does not move while the `Rc` lives.
unsafe impl<T: ?Sized> StableDeref for std::rc::Rc<T> {}

#[cfg(feature = "std")]
// Safety: a `Box`'s allocation does not move when the `Box` does.
unsafe impl<T: ?Sized> StableDeref for std::boxed::Box<T> {}

const NO_STATUS: u8 = u8::MAX;

/// The statuses of one name, as a [`Stream`]: what `grpc.health.v1.Health/Watch` sends.
///
/// - The first item comes at once: the current status, or `SERVICE_UNKNOWN` when the name is
///   not registered.
/// - Then one item per change, never two equal items in a row. Under a burst of changes the
///   intermediate values may be skipped, but the last item is always the final status
///   (latest wins).
/// - A name that is registered later, cleared, and registered again is followed through all
///   of it (`clear` gives `SERVICE_UNKNOWN`).
/// - The stream ends only after [`Registry::end_watches`].
///
/// `R` is any stable handle to the registry (`&Registry`, `Arc<Registry>`), and `S` any owned
/// or borrowed name, so a `Watch<Arc<Registry<N>>, String>` is `Send + 'static`.
///
/// # Cancellation
///
/// Dropping the watch unlinks its waiter from the registry at once; nothing is left behind.
///
/// # Examples
///
/// ```
/// use futures::{executor::block_on, StreamExt};
/// use dubbo_health_core::{Registry, ServingStatus};
///
/// static HEALTH: Registry<8> = Registry::new();
///
/// let mut watch = Box::pin(HEALTH.watch("org.apache.dubbogo.samples.api.Greeter").unwrap());
/// assert_eq!(block_on(watch.next()), Some(ServingStatus::ServiceUnknown));
/// HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::NotServing).unwrap();
/// HEALTH.set("org.apache.dubbogo.samples.api.Greeter", ServingStatus::Serving).unwrap();
/// // Latest wins: the skipped NOT_SERVING is never delivered after SERVING.
/// assert_eq!(block_on(watch.next()), Some(ServingStatus::Serving));
/// ```
///
/// A watch must be pinned before it is polled (it is `!Unpin`), and it is `Send` when its
/// handle and name are, so it can be returned from a tonic handler:
///
/// ```compile_fail
/// use dubbo_health_core::Registry;
/// fn unpin<T: Unpin>(_: T) {}
/// let registry = Registry::<8>::new();
/// unpin(registry.watch("svc").unwrap());
/// ```
///
/// ```compile_fail
/// use std::rc::Rc;
/// use dubbo_health_core::{Registry, Watch};
/// fn send<T: Send>(_: T) {}
/// send(Watch::new(Rc::new(Registry::<8>::new()), "svc").unwrap());
/// ```
///
/// # Implementation Notes
///
/// The watch owns its wait-list node, so parking allocates nothing. The node is linked only
/// while the watch is parked, into its slot's list or the unknown-names list, and only ever
/// touched under the registry lock. The watch is `!Unpin`: once polled, its node's address
/// may be in a list, so it must not move until it is dropped (and unlinked).
pub struct Watch<R, S> {
    registry: R,
    name: S,
    hash: u32,
    /// The slot and generation the name was found at, to skip the name comparison.
    bound: Option<(u32, u32)>,
    /// The status last yielded, or `NO_STATUS`.
    last: u8,
    /// `Registry::end_watches` epoch at creation.
    end_epoch: u32,
    done: bool,
    /// Set on the first poll, when the node may become linked: how `Drop` reaches the registry
    /// to unlink it (a `Drop` impl cannot name the `Deref<Target = Registry<N>>` bound).
    unlink: Option<unsafe fn(*const R, NonNull<Node>)>,
    /// Touched only under the registry lock once it may be linked.
    node: UnsafeCell<Node>,
    _pin: PhantomPinned,
}

// Safety: the node (raw pointers and a `Waker`, which is `Send + Sync`) is only accessed under
// the registry lock; everything else is owned data of `R` and `S`.
unsafe impl<R: Send, S: Send> Send for Watch<R, S> {}
// Safety: `&Watch` only exposes `&R` and `&S`; the node is never reached through `&Watch`.
unsafe impl<R: Sync, S: Sync> Sync for Watch<R, S> {}

impl<const N: usize, R, S> Watch<R, S>
where
    R: StableDeref + Deref<Target = Registry<N>>,
    S: AsRef<str>,
{
    /// A watch on `name` in `registry`. Nothing is linked or read until the first poll.
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`](crate::MAX_NAME) bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dubbo_health_core::{Registry, Watch};
    ///
    /// let registry = Arc::new(Registry::<8>::new());
    /// let watch = Watch::new(Arc::clone(&registry), String::from("svc")).unwrap();
    /// fn is_send_static<T: Send + 'static>(_: &T) {}
    /// is_send_static(&watch);
    /// ```
    pub fn new(registry: R, name: S) -> Result<Self, Error> {
        check_len(name.as_ref())?;
        let hash = hash(name.as_ref().as_bytes());
        let end_epoch = registry.state.with(|s| s.end_epoch);
        Ok(Self {
            registry,
            name,
            hash,
            bound: None,
            last: NO_STATUS,
            end_epoch,
            done: false,
            unlink: None,
            node: UnsafeCell::new(Node::default()),
            _pin: PhantomPinned,
        })
    }
}

impl<R, S: AsRef<str>> Watch<R, S> {
    /// The watched name.
    ///
    /// ```
    /// # use dubbo_health_core::Registry;
    /// let registry = Registry::<8>::new();
    /// assert_eq!(registry.watch("svc").unwrap().name(), "svc");
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_ref()
    }

    /// The registry handle.
    ///
    /// ```
    /// # use dubbo_health_core::Registry;
    /// let registry = Registry::<8>::new();
    /// let watch = registry.watch("svc").unwrap();
    /// assert!(std::ptr::eq(*watch.registry(), &registry));
    /// ```
    pub fn registry(&self) -> &R {
        &self.registry
    }

    /// The status this watch yielded last, if any.
    ///
    /// ```
    /// use futures::{executor::block_on, StreamExt};
    /// # use dubbo_health_core::{Registry, ServingStatus};
    /// let registry = Registry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("").unwrap());
    /// assert_eq!(watch.last(), None);
    /// block_on(watch.next());
    /// assert_eq!(watch.last(), Some(ServingStatus::Serving));
    /// ```
    pub fn last(&self) -> Option<ServingStatus> {
        (self.last != NO_STATUS).then(|| ServingStatus::from_bits(u32::from(self.last)))
    }
}

impl<const N: usize, R, S> Stream for Watch<R, S>
where
    R: StableDeref + Deref<Target = Registry<N>>,
    S: AsRef<str>,
{
    type Item = ServingStatus;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServingStatus>> {
        // Safety: nothing below moves out of `this`; the node keeps its address.
        let this = unsafe { self.get_unchecked_mut() };
        if this.done {
            return Poll::Ready(None);
        }
        let registry: &Registry<N> = &this.registry;
        let name = this.name.as_ref();
        // The node is pinned inside `this` from here on (see `StableDeref` and `Drop`).
        let node = NonNull::from(&this.node).cast::<Node>();
        let mut old_waker = None;
        let poll = registry.state.with(|state| {
            let (status, bound) = registry.locked_status(name, this.hash, this.bound);
            this.bound = bound;
            let ended = state.end_epoch != this.end_epoch;
            if status as u8 != this.last || ended {
                // Safety: lock held (we are inside `state.with`); `node` is this watch's own.
                old_waker = unsafe { detach(state, node) };
                if status as u8 != this.last {
                    this.last = status as u8;
                    return Poll::Ready(Some(status));
                }
                this.done = true;
                return Poll::Ready(None);
            }
            let want: ListId = bound.map_or(UNKNOWN_LIST, |(idx, _)| idx);
            // Safety: lock held. Node fields are read and written through short-lived place
            // expressions, never a reference held across a list operation (which reborrows
            // the node).
            let linked = unsafe { (*node.as_ptr()).linked };
            if linked != Some(want) {
                if let Some(id) = linked {
                    // Safety: lock held, and `linked` names the list the node is in.
                    unsafe { state.list(id).remove(node) };
                }
                // Safety: lock held; the node is unlinked, valid, and pinned in `this`.
                unsafe { state.list(want).push_back(want, node) };
            }
            // Safety: lock held, and no other reference to the node is live.
            let waker = unsafe { &mut (*node.as_ptr()).waker };
            match waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => old_waker = waker.replace(cx.waker().clone()),
            }
            Poll::Pending
        });
        this.unlink = Some(unlink_from::<N, R>);
        // Dropped after the lock is released: a waker's drop may run arbitrary code.
        drop(old_waker);
        poll
    }
}

impl<const N: usize, R, S> FusedStream for Watch<R, S>
where
    R: StableDeref + Deref<Target = Registry<N>>,
    S: AsRef<str>,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<R, S> Drop for Watch<R, S> {
    fn drop(&mut self) {
        if let Some(unlink) = self.unlink {
            let node = NonNull::from(&self.node).cast::<Node>();
            // Safety: `unlink` was set by `poll_next` for exactly this `R`, whose target is
            // stable (`StableDeref`); the node is still at the address it was linked with.
            unsafe { unlink(&self.registry, node) };
        }
    }
}

/// Unlinks `node` from whichever list holds it, and takes its waker.
///
/// # Safety
///
/// The registry lock is held (`state` is only reachable inside it), and `node` is a valid
/// watch node that is in no list or in one of `state`'s.
unsafe fn detach<const N: usize>(state: &mut State<N>, node: NonNull<Node>) -> Option<Waker> {
    // Safety: per the contract; a place expression, so no reference outlives the read.
    if let Some(id) = unsafe { (*node.as_ptr()).linked } {
        // Safety: `id` names the list the node is in.
        unsafe { state.list(id).remove(node) };
    }
    // Safety: per the contract; no other reference to the node is live.
    unsafe { (*node.as_ptr()).waker.take() }
}

/// Unlinks a watch's node from whichever list holds it.
///
/// # Safety
///
/// `registry` points at the live handle the node was linked through, and `node` at the
/// watch's own node.
unsafe fn unlink_from<const N: usize, R>(registry: *const R, node: NonNull<Node>)
where
    R: StableDeref + Deref<Target = Registry<N>>,
{
    // Safety: the caller passes the watch's own, still-live handle.
    let registry: &R = unsafe { &*registry };
    let registry: &Registry<N> = registry;
    // Safety: lock held (inside `with`), and `node` is the watch's own.
    let waker = registry.state.with(|state| unsafe { detach(state, node) });
    drop(waker);
}

impl<R, S: AsRef<str>> fmt::Debug for Watch<R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("name", &self.name())
            .field("last", &self.last())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
