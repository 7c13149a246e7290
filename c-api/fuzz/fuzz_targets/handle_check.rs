//! Request bytes from the fuzzer go through the C ABI's handlers exactly as a C/C++ gRPC
//! host passes them: `dh_handle_check`, `dh_handle_list`, `dh_watch_from_request`. Checks
//! that they never panic or misbehave and agree with the core decoder.
#![no_main]

use std::sync::OnceLock;

use dubbo_health::*;
use dubbo_health_core::{wire, ServingStatus};
use libfuzzer_sys::fuzz_target;

/// One registry for the whole run, with a few names (the handle lives for the process).
fn registry() -> *const dh_registry {
    static REG: OnceLock<usize> = OnceLock::new();
    *REG.get_or_init(|| {
        let mut reg = std::ptr::null_mut();
        unsafe {
            assert_eq!(dh_registry_new(&mut reg), DH_OK);
            for (name, status) in [
                ("a", DH_STATUS_NOT_SERVING),
                ("org.apache.dubbogo.samples.api.Greeter", DH_STATUS_SERVING),
                ("group/org.apache.Foo:1.0.0", DH_STATUS_UNKNOWN),
            ] {
                assert_eq!(dh_set(reg, name.as_ptr(), name.len(), status, std::ptr::null_mut()), DH_OK);
            }
        }
        reg as usize
    }) as *const dh_registry
}

fuzz_target!(|data: &[u8]| {
    let reg = registry();
    // The first byte picks the output capacity, so short buffers are exercised too.
    let (cap, req) = match data.split_first() {
        Some((&c, rest)) => (usize::from(c % 8), rest),
        None => (2, data),
    };
    let mut out = [0u8; 64];
    let (mut len, mut code) = (usize::MAX, u32::MAX);
    let rc = unsafe { dh_handle_check(reg, req.as_ptr(), req.len(), out.as_mut_ptr(), cap, &mut len, &mut code) };
    match wire::decode_check_request(req) {
        Ok(name) => {
            let expected = match name {
                "" => Some(ServingStatus::Serving),
                "a" => Some(ServingStatus::NotServing),
                "org.apache.dubbogo.samples.api.Greeter" => Some(ServingStatus::Serving),
                "group/org.apache.Foo:1.0.0" => Some(ServingStatus::Unknown),
                _ => None,
            };
            match expected {
                Some(status) => {
                    let bytes = wire::check_response_bytes(status);
                    if cap >= bytes.len() {
                        assert_eq!(rc, DH_OK);
                        assert_eq!(code, 0);
                        assert_eq!(&out[..len], bytes);
                    } else {
                        assert_eq!(rc, DH_BUFFER_TOO_SMALL);
                        assert_eq!(len, bytes.len());
                    }
                }
                None => {
                    assert_eq!(rc, DH_OK);
                    assert_eq!(code, 5);
                    assert!(len <= cap);
                }
            }
        }
        Err(_) => {
            assert_eq!(rc, DH_OK);
            assert_eq!(code, 3);
            assert!(len <= cap && std::str::from_utf8(&out[..len]).is_ok());
        }
    }

    // List ignores the request's content but must refuse malformed bytes the same way.
    let mut list = [0u8; 512];
    let rc = unsafe { dh_handle_list(reg, req.as_ptr(), req.len(), list.as_mut_ptr(), list.len(), &mut len, &mut code) };
    assert_eq!(rc, DH_OK);
    assert_eq!(code == 0, wire::decode_list_request(req).is_ok());

    // Watch from the same bytes: opens exactly when the request decodes.
    let mut w = std::ptr::null_mut();
    let rc = unsafe { dh_watch_from_request(reg, req.as_ptr(), req.len(), &mut w, &mut code) };
    if wire::decode_check_request(req).is_ok() {
        assert_eq!(rc, DH_OK);
        let mut st = -1;
        assert_eq!(unsafe { dh_watch_try_next(w, &mut st) }, DH_OK);
        assert!(ServingStatus::from_i32(st).is_some());
        assert_eq!(unsafe { dh_watch_try_next(w, &mut st) }, DH_WOULD_BLOCK);
        unsafe { dh_watch_free(w) };
    } else {
        assert_eq!(rc, DH_INVALID_REQUEST);
        assert_eq!(code, 3);
        assert!(w.is_null());
    }
});
