//! Dubbo service keys: the names dubbo-go and Dubbo Java register for an export.

use core::{fmt, ops::Deref};

use crate::{Error, MAX_NAME};

/// Which Dubbo host's service key [`service_key`] builds.
///
/// Both are `group/interface:version`, the group left out when empty. They differ only in
/// the version `0.0.0`:
///
/// ```
/// use dubbo_health_core::{service_key, KeyForm};
///
/// let go = service_key("org.apache.Foo", "grp", "0.0.0", KeyForm::DubboGo).unwrap();
/// let java = service_key("org.apache.Foo", "grp", "0.0.0", KeyForm::DubboJava).unwrap();
/// assert_eq!(go.as_str(), "grp/org.apache.Foo");
/// assert_eq!(java.as_str(), "grp/org.apache.Foo:0.0.0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum KeyForm {
    /// dubbo-go's `common.ServiceKey`: the version is left out when empty or `0.0.0`.
    #[default]
    DubboGo,
    /// Dubbo Java's `URL.getServiceKey`: the version is kept whenever it is not empty,
    /// `0.0.0` included.
    DubboJava,
}

impl KeyForm {
    /// Both forms, dubbo-go's first: what [`Registry::export`](crate::Registry::export)
    /// registers.
    ///
    /// ```
    /// # use dubbo_health_core::KeyForm;
    /// assert_eq!(KeyForm::ALL, [KeyForm::DubboGo, KeyForm::DubboJava]);
    /// ```
    pub const ALL: [Self; 2] = [Self::DubboGo, Self::DubboJava];
}

/// A service key built by [`service_key`], held in a buffer of [`MAX_NAME`] bytes (no
/// allocation). Derefs to `&str`.
///
/// ```
/// use dubbo_health_core::{service_key, KeyForm};
///
/// let key = service_key("org.apache.Foo", "grp", "1.0.0", KeyForm::DubboGo).unwrap();
/// assert_eq!(&*key, "grp/org.apache.Foo:1.0.0");
/// assert_eq!(key.len(), 24);
/// assert_eq!(key.to_string(), "grp/org.apache.Foo:1.0.0");
/// ```
#[derive(Clone, Copy)]
pub struct ServiceKey {
    buf: [u8; MAX_NAME],
    len: u8,
}

impl ServiceKey {
    /// The key as a string slice.
    ///
    /// ```
    /// # use dubbo_health_core::{service_key, KeyForm};
    /// let key = service_key("greet.GreetService", "", "", KeyForm::DubboJava).unwrap();
    /// assert_eq!(key.as_str(), "greet.GreetService");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are copied in (see `service_key`), so the bytes are UTF-8.
        core::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl Deref for ServiceKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ServiceKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for ServiceKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for ServiceKey {}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service key of an export: `group/interface:version`, as dubbo-go
/// ([`KeyForm::DubboGo`]: version left out when empty or `0.0.0`) or Dubbo Java
/// ([`KeyForm::DubboJava`]: version kept unless empty) builds it; the group is left out
/// when empty in both. Allocation-free.
///
/// # Errors
///
/// [`Error::NameTooLong`] when the key would be over [`MAX_NAME`] bytes.
///
/// ```
/// use dubbo_health_core::{service_key, Error, KeyForm};
///
/// let key = |i, g, v, f| service_key(i, g, v, f).unwrap().to_string();
/// let greeter = "org.apache.dubbogo.samples.api.Greeter";
/// assert_eq!(key(greeter, "", "", KeyForm::DubboGo), greeter);
/// assert_eq!(key("org.apache.Foo", "grp", "1.0.0", KeyForm::DubboGo), "grp/org.apache.Foo:1.0.0");
/// assert_eq!(key("org.apache.Foo", "", "0.0.0", KeyForm::DubboGo), "org.apache.Foo");
/// assert_eq!(key("org.apache.Foo", "", "0.0.0", KeyForm::DubboJava), "org.apache.Foo:0.0.0");
/// assert_eq!(
///     service_key(&"i".repeat(200), "g", "", KeyForm::DubboGo),
///     Err(Error::NameTooLong { len: 202 })
/// );
/// ```
pub fn service_key(
    interface: &str,
    group: &str,
    version: &str,
    form: KeyForm,
) -> Result<ServiceKey, Error> {
    let with_version = match form {
        KeyForm::DubboGo => !version.is_empty() && version != "0.0.0",
        KeyForm::DubboJava => !version.is_empty(),
    };
    let parts: [&str; 5] = [
        group,
        if group.is_empty() { "" } else { "/" },
        interface,
        if with_version { ":" } else { "" },
        if with_version { version } else { "" },
    ];
    let len = parts
        .iter()
        .map(|p| p.len())
        .fold(0usize, usize::saturating_add);
    if len > MAX_NAME {
        return Err(Error::NameTooLong { len });
    }
    let mut key = ServiceKey {
        buf: [0; MAX_NAME],
        len: len as u8,
    };
    let mut at = 0;
    for part in parts {
        key.buf[at..at + part.len()].copy_from_slice(part.as_bytes());
        at += part.len();
    }
    Ok(key)
}

/// Whether `interface` can be exported: not empty, and without `/` or `:`, so that no
/// service key of another export can be an interface name.
pub(crate) fn valid_interface(interface: &str) -> bool {
    !interface.is_empty() && !interface.bytes().any(|b| b == b'/' || b == b':')
}
