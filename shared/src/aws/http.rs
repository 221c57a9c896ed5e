//! The SDK's HTTPS client (hyper + rustls with aws-lc, as the SDK's default), built on the first
//! request instead of when each SDK client is constructed.
//!
//! The default client builds a TLS connector while the SDK validates a new client's configuration,
//! and that loads and parses every CA certificate of the system (about 4.5 ms of a 9 ms cold start
//! here, found with `bench/examples/init_probe.rs` and gdb). Built lazily, that work moves out of
//! init into the first call, which needs it anyway; init makes no network call either way.

use std::sync::{Arc, OnceLock};

use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// One per process, shared by every SDK client built from the same `SdkConfig`.
#[derive(Debug, Clone, Default)]
pub struct LazyHttpsClient {
    inner: Arc<OnceLock<SharedHttpClient>>,
}

impl HttpClient for LazyHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner
            .get_or_init(|| {
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                    .build_https()
            })
            .http_connector(settings, components)
    }
}
