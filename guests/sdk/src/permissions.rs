//! The plugin's declaration of what it needs beyond the default grant (log, its store, SSH —
//! and for recipes the certificate — of the machine being worked on), written into the
//! component as the custom section `dmw:permissions`, which the host reads without running
//! the plugin (`dmw plugin inspect`).
//!
//! ```ignore
//! dmw_guest::permissions! {
//!     capability "keys";
//!     http_host "{acme-api-url}";
//! }
//! ```

/// The section's bytes from its text (used by [`crate::permissions!`]).
pub const fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let b = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// Declare the capabilities, HTTP hosts and local programs a plugin needs beyond the default
/// grant; entries come in this order: `capability "NAME";`, `http_host "PATTERN";`,
/// `program "NAME";`.
#[macro_export]
macro_rules! permissions {
    (
        $(capability $c:literal;)*
        $(http_host $h:literal;)*
        $(program $p:literal;)*
    ) => {
        const _: () = {
            const TEXT: &str = concat!(
                "dmw-permissions 1\n",
                $("capability ", $c, "\n",)*
                $("http-host ", $h, "\n",)*
                $("program ", $p, "\n",)*
            );
            // Only components carry it (a native test build has no use for the section).
            #[cfg(target_arch = "wasm32")]
            #[used]
            #[unsafe(link_section = "dmw:permissions")]
            static DMW_PERMISSIONS: [u8; TEXT.len()] =
                $crate::permissions::bytes::<{ TEXT.len() }>(TEXT);
        };
    };
}
