//! What the header promises does not allocate, does not: `dh_get` (found or not),
//! `dh_handle_check` on every path that returns `DH_OK`, and reading the last error they
//! leave. A global allocator counts every allocation made on the test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};

use dubbo_health::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// Safety: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // Safety: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` made on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn get_and_handle_check_never_allocate() {
    let mut reg = null_mut();
    // Safety (all): live handles and valid buffers throughout.
    unsafe {
        assert_eq!(dh_registry_new(&mut reg), DH_OK);
        assert_eq!(
            dh_set(reg, b"svc".as_ptr(), 3, DH_STATUS_NOT_SERVING, null_mut()),
            DH_OK
        );
    }
    let big = vec![0u8; DH_MAX_REQUEST_LEN + 1];
    let count = allocations(|| unsafe {
        let mut st = -1;
        assert_eq!(dh_get(reg, b"svc".as_ptr(), 3, &mut st), DH_OK);
        assert_eq!(st, DH_STATUS_NOT_SERVING);
        // The first error on this thread, then its text.
        assert_eq!(dh_get(reg, b"nope".as_ptr(), 4, &mut st), DH_NOT_FOUND);
        let mut text = [0 as std::ffi::c_char; 64];
        let mut len = 0;
        assert_eq!(
            dh_last_error_message(text.as_mut_ptr(), text.len(), &mut len),
            DH_OK
        );
        assert!(len > 0);

        let (mut out, mut out_len, mut code) = ([0u8; 64], 0usize, 99u32);
        let requests: [(&[u8], u32); 4] = [
            (b"\x0a\x03svc", 0),  // OK
            (b"\x0a\x04nope", 5), // NOT_FOUND, with its message
            (b"\x0a\x05ab", 3),   // INVALID_ARGUMENT (truncated)
            (&big, 8),            // RESOURCE_EXHAUSTED (over the message limit)
        ];
        for (req, want) in requests {
            let rc = dh_handle_check(
                reg,
                req.as_ptr(),
                req.len(),
                out.as_mut_ptr(),
                out.len(),
                &mut out_len,
                &mut code,
            );
            assert_eq!((rc, code), (DH_OK, want));
        }
        assert_eq!(
            dh_handle_check(reg, null(), 0, out.as_mut_ptr(), 8, &mut out_len, &mut code),
            DH_OK
        );
    });
    assert_eq!(
        count, 0,
        "allocations on paths documented as allocation-free"
    );
    // Safety: the live handle from above, freed once.
    unsafe { dh_registry_free(reg) };
}
