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

use crate::{hash::Hash, list::Node, registry::check_len, Error, Registry, ServingStatus, Storage};

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
/// `R` is any stable handle to the registry (`&Registry<S>`, `Arc<HeapRegistry>`), and `N`
/// any owned or borrowed name, so a `Watch<Arc<HeapRegistry>, String>` is `Send + 'static`.
///
/// # Cancellation
///
/// Dropping the watch unlinks its waiter from the registry at once; nothing is left behind.
///
/// # Panics
///
/// A waker is cloned and dropped only while no lock is held. If its `clone` or `drop`
/// panics, the panic comes out of `poll_next` and the watch stays valid: it can be polled
/// again or dropped.
///
/// # Examples
///
/// ```
/// use futures::{executor::block_on, StreamExt};
/// use dubbo_health_core::{FixedRegistry, ServingStatus};
///
/// static HEALTH: FixedRegistry<8> = FixedRegistry::new();
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
/// use dubbo_health_core::FixedRegistry;
/// fn unpin<T: Unpin>(_: T) {}
/// let registry = FixedRegistry::<8>::new();
/// unpin(registry.watch("svc").unwrap());
/// ```
///
/// ```compile_fail
/// use std::rc::Rc;
/// use dubbo_health_core::{FixedRegistry, Watch};
/// fn send<T: Send>(_: T) {}
/// send(Watch::new(Rc::new(FixedRegistry::<8>::new()), "svc").unwrap());
/// ```
///
/// # Implementation Notes
///
/// The watch owns its wait-list node, so parking allocates nothing. The node is linked only
/// while the watch is parked — into its name's slot list, or, while the name is not
/// registered, into the bucket of the name's home index position — and only ever touched
/// under the registry lock. The watch is `!Unpin`: once polled, its node's address may be in
/// a list, so it must not move until it is dropped (and unlinked).
///
/// Writers on other threads write the node (unlink it, take its waker) while the owner may
/// hold a `Pin<&mut Watch>`. That is sound for two reasons together: the lock orders every
/// access to the node, and the node's `PhantomPinned` makes the watch `!Unpin`, which is what
/// exempts a `&mut` to it from the uniqueness (`noalias`) guarantee of ordinary `&mut`
/// references; the node also sits in an `UnsafeCell`, so shared access through raw pointers is
/// allowed.
pub struct Watch<R, N> {
    registry: R,
    name: N,
    hash: Hash,
    /// The slot the name was last found in: checked first, by name, on the next poll.
    bound: Option<u32>,
    /// `Registry::end_watches` epoch at creation.
    end_epoch: u32,
    /// The status last yielded, or `NO_STATUS`.
    last: u8,
    done: bool,
    /// The node holds no waker (it was never parked, or this watch detached it): clone one
    /// before taking the lock.
    needs_waker: bool,
    /// How `Drop` reaches the registry to unlink the node (a `Drop` impl cannot name the
    /// `Deref<Target = Registry<S>>` bound). Armed at the start of every poll, before the node
    /// can be linked, so no panic can leave a linked node without a way to unlink it.
    unlink: Option<unsafe fn(*const R, NonNull<Node>)>,
    /// Touched only under the registry lock once it may be linked.
    node: UnsafeCell<Node>,
    _pin: PhantomPinned,
}

// Safety: the node (raw pointers and a `Waker`, which is `Send + Sync`) is only accessed under
// the registry lock; everything else is owned data of `R` and `N`.
unsafe impl<R: Send, N: Send> Send for Watch<R, N> {}
// Safety: `&Watch` only exposes `&R` and `&N`; the node is never reached through `&Watch`.
unsafe impl<R: Sync, N: Sync> Sync for Watch<R, N> {}

impl<S, R, N> Watch<R, N>
where
    S: Storage,
    R: StableDeref + Deref<Target = Registry<S>>,
    N: AsRef<str>,
{
    /// A watch on `name` in `registry`. Nothing is linked or read until the first poll.
    ///
    /// # Errors
    ///
    /// [`Error::NameTooLong`] over [`MAX_NAME`](crate::MAX_NAME) bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use dubbo_health_core::{HeapRegistry, Watch};
    ///
    /// let registry = Arc::new(HeapRegistry::with_capacity(8).unwrap());
    /// let watch = Watch::new(Arc::clone(&registry), String::from("svc")).unwrap();
    /// fn is_send_static<T: Send + 'static>(_: &T) {}
    /// is_send_static(&watch);
    /// ```
    pub fn new(registry: R, name: N) -> Result<Self, Error> {
        check_len(name.as_ref())?;
        let hash = registry.hash(name.as_ref().as_bytes());
        let end_epoch = registry.locked(|l| l.header.end_epoch);
        Ok(Self {
            registry,
            name,
            hash,
            bound: None,
            end_epoch,
            last: NO_STATUS,
            done: false,
            needs_waker: true,
            unlink: None,
            node: UnsafeCell::new(Node::default()),
            _pin: PhantomPinned,
        })
    }
}

impl<R, N: AsRef<str>> Watch<R, N> {
    /// The watched name.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
    /// assert_eq!(registry.watch("svc").unwrap().name(), "svc");
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_ref()
    }

    /// The registry handle.
    ///
    /// ```
    /// # use dubbo_health_core::FixedRegistry;
    /// let registry = FixedRegistry::<8>::new();
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
    /// # use dubbo_health_core::{FixedRegistry, ServingStatus};
    /// let registry = FixedRegistry::<8>::new();
    /// let mut watch = Box::pin(registry.watch("").unwrap());
    /// assert_eq!(watch.last(), None);
    /// block_on(watch.next());
    /// assert_eq!(watch.last(), Some(ServingStatus::Serving));
    /// ```
    pub fn last(&self) -> Option<ServingStatus> {
        (self.last != NO_STATUS).then(|| ServingStatus::from_bits(u32::from(self.last)))
    }
}

/// What one lock round of a poll decided.
enum Round {
    /// Yield this; drop the waker (taken from the node) after the lock.
    Ready(Option<ServingStatus>, Option<Waker>),
    /// Parked; drop the replaced waker after the lock.
    Parked(Option<Waker>),
    /// Must park but has no waker clone: clone one outside the lock and go again.
    NeedWaker,
}

impl<S, R, N> Stream for Watch<R, N>
where
    S: Storage,
    R: StableDeref + Deref<Target = Registry<S>>,
    N: AsRef<str>,
{
    type Item = ServingStatus;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ServingStatus>> {
        // Safety: nothing below moves out of `this`; the node keeps its address. Writers on
        // other threads may write the node meanwhile (under the lock): see the type's notes
        // on why that is sound while this `&mut` exists (`PhantomPinned`, `UnsafeCell`).
        let this = unsafe { self.get_unchecked_mut() };
        if this.done {
            return Poll::Ready(None);
        }
        // Armed before the node can be linked (only inside `locked` below): whatever panics
        // from here on, `Drop` unlinks the node.
        this.unlink = Some(unlink_from::<S, R>);
        let node = NonNull::from(&this.node).cast::<Node>();
        // A waker's `clone` is user code: never run it under the spin lock. Clone ahead only
        // when this poll will probably park: the node holds no waker, and this is not the
        // first poll (which always yields).
        let mut fresh = if this.needs_waker && this.last != NO_STATUS {
            Some(cx.waker().clone())
        } else {
            None
        };
        let registry: &Registry<S> = &this.registry;
        let name = this.name.as_ref().as_bytes();
        loop {
            let round = registry.locked(|l| {
                let (status, bound) = l.status(name, this.hash, this.bound);
                this.bound = bound;
                let ended = l.header.end_epoch != this.end_epoch;
                if status as u8 != this.last || ended {
                    // Safety: lock held; `node` is this watch's own, in no list or in the one
                    // its `linked` names.
                    let old = unsafe { l.detach(node) };
                    this.needs_waker = true;
                    if status as u8 != this.last {
                        this.last = status as u8;
                        return Round::Ready(Some(status), old);
                    }
                    this.done = true;
                    return Round::Ready(None, old);
                }
                let want = l.park_link(this.hash, bound);
                // Safety: lock held; node fields are read and written through place
                // expressions, never a reference held across a list operation.
                let (linked, will_wake) = unsafe {
                    let n = node.as_ptr();
                    (
                        (*n).linked,
                        (*n).waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())),
                    )
                };
                if linked == want && will_wake {
                    return Round::Parked(None);
                }
                let Some(waker) = fresh.take() else {
                    return Round::NeedWaker;
                };
                if linked != want {
                    // Safety: lock held; the node is this watch's own, and pinned.
                    unsafe {
                        l.unlink(node);
                        l.link(node, want, this.hash.hi());
                    }
                }
                // Safety: lock held; no other reference to the node is live.
                Round::Parked(unsafe { (*node.as_ptr()).waker.replace(waker) })
            });
            // Wakers are dropped (and cloned) only here, with the lock released.
            match round {
                Round::Ready(item, old) => {
                    drop(old);
                    drop(fresh);
                    return Poll::Ready(item);
                }
                Round::Parked(old) => {
                    this.needs_waker = false;
                    drop(old);
                    drop(fresh);
                    return Poll::Pending;
                }
                Round::NeedWaker => fresh = Some(cx.waker().clone()),
            }
        }
    }
}

impl<S, R, N> FusedStream for Watch<R, N>
where
    S: Storage,
    R: StableDeref + Deref<Target = Registry<S>>,
    N: AsRef<str>,
{
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<R, N> Drop for Watch<R, N> {
    fn drop(&mut self) {
        if let Some(unlink) = self.unlink {
            let node = NonNull::from(&self.node).cast::<Node>();
            // Safety: `unlink` was set by `poll_next` for exactly this `R`, whose target is
            // stable (`StableDeref`); the node is still at the address it was linked with.
            unsafe { unlink(&self.registry, node) };
        }
    }
}

/// Unlinks a watch's node from whichever list holds it, then drops its waker (after the lock
/// is released: a waker's drop is user code).
///
/// # Safety
///
/// `registry` points at the live handle the node was linked through, and `node` at the
/// watch's own node.
unsafe fn unlink_from<S, R>(registry: *const R, node: NonNull<Node>)
where
    S: Storage,
    R: StableDeref + Deref<Target = Registry<S>>,
{
    // Safety: the caller passes the watch's own, still-live handle.
    let registry: &R = unsafe { &*registry };
    let registry: &Registry<S> = registry;
    // Safety: lock held (inside `locked`), and `node` is the watch's own.
    let waker = registry.locked(|l| unsafe { l.detach(node) });
    drop(waker);
}

impl<R, N: AsRef<str>> fmt::Debug for Watch<R, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("name", &self.name())
            .field("last", &self.last())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
