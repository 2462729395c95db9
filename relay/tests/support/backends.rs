//! Runs a test body once per backend: `both_backends!(name, body_fn)`.

#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[test]
            fn uring() {
                $body(shoal_relay::io::BackendKind::Uring);
            }
            #[test]
            fn mmsg() {
                $body(shoal_relay::io::BackendKind::Mmsg);
            }
        }
    };
}
