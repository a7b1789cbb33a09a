//! The plugin's declaration of what it needs beyond the default grant (log, its store, SSH —
//! and for recipes the certificate — of the machine being worked on), written into the
//! component as the custom section `dmw:permissions`, which the host reads without running
//! the plugin (`dmw plugin inspect`).
//!
//! ```ignore
//! dmw_guest::permissions! {
//!     capability "keys";
//!     http_host "{acme-api-url}";
//!     secret "acme-token";
//!     env_var "ACME_LEGACY_TOKEN";
//!     http_cacert "acme-cacert";
//!     http_insecure "acme-insecure";
//! }
//! ```
//!
//! - `program "NAME";`: the plugin runs NAME with any arguments. Such a program can do
//!   anything the user can, and `dmw plugin inspect`/`install` say so (FULL TRUST).
//! - `program "NAME" args ["info", "--output=json", "*"];`: NAME runs only with arguments
//!   matching one of its declared forms (several `program` lines, one form each): a literal
//!   matches itself, `*` one argument not starting with `-`, `PREFIX*` one argument starting
//!   with PREFIX, `**` (last) any further arguments. Other arguments are refused by the host.
//! - `secret FLAG`: the flag's value is a secret (stored 0600 only, `<redacted>` everywhere).
//! - `file FLAG`: the flag's value names a local file; the host reads it (a regular file of
//!   at most 64 KiB outside dmw's store) and gives the driver its contents as the value (a
//!   plugin cannot read files). Only a file the user names is read: the flag may have no
//!   default (a driver that declares one is refused), and it is an ask the user approves.
//! - `http_host "{FLAG}"`: the host of a URL the user typed in `--FLAG`; the flag's default
//!   is never used for the allow-list (declare a default API host as it is).
//! - `env_var NAME`: an environment variable outside the driver's `NAME_` prefix that its
//!   flags may read (a file used by path needs the user's approval for it).
//! - `http_cacert FLAG`: the flag whose value is a CA bundle file added to the trusted roots
//!   for this plugin's requests. `http_insecure FLAG`: a boolean flag that turns TLS
//!   verification off for this plugin's requests (with a warning).

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
/// grant, and its secret flags, foreign environment variables and TLS flags; entries come
/// in this order: `capability "NAME";`, `http_host "PATTERN";`, `program "NAME";` or
/// `program "NAME" args ["PATTERN", …];`,
/// `secret "FLAG";`, `file "FLAG";`, `env_var "NAME";`, `http_cacert "FLAG";`,
/// `http_insecure "FLAG";`, `http_keystone_catalog "AUTH-URL-FLAG" "REGION-FLAG"
/// "INTERFACE-FLAG";` (the Keystone service catalog endpoints for that region and interface
/// are allowed hosts too).
#[macro_export]
macro_rules! permissions {
    (
        $(capability $c:literal;)*
        $(http_host $h:literal;)*
        $(program $p:literal $(args [$($a:literal),* $(,)?])?;)*
        $(secret $s:literal;)*
        $(file $f:literal;)*
        $(env_var $e:literal;)*
        $(http_cacert $ca:literal;)?
        $(http_insecure $i:literal;)?
        $(http_keystone_catalog $ka:literal $kr:literal $ki:literal;)?
    ) => {
        const _: () = {
            const TEXT: &str = concat!(
                "dmw-permissions 1\n",
                $("capability ", $c, "\n",)*
                $("http-host ", $h, "\n",)*
                $("program ", $p, $(" ", stringify!([$($a),*]),)? "\n",)*
                $("secret ", $s, "\n",)*
                $("file ", $f, "\n",)*
                $("env-var ", $e, "\n",)*
                $("http-cacert ", $ca, "\n",)?
                $("http-insecure ", $i, "\n",)?
                $("http-keystone-catalog ", $ka, " ", $kr, " ", $ki, "\n",)?
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
