//! The licence products on sale, fetched from `GET /product-families` at start and then
//! slowly (hourly by default) into `mod_jetpack_licence_products`, so the PHP module's product
//! drop-down never calls the API.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::defaults;
use crate::text::Chain;
use crate::worker::Worker;

/// How often the product list is fetched.
#[derive(Clone, Copy, Debug)]
pub struct ProductsSettings {
    /// `run` fetches it at all (tests that count every partner-API request turn it off).
    pub enabled: bool,
    /// Between two successful fetches.
    pub refresh: Duration,
    /// After a failed fetch.
    pub retry: Duration,
}

impl Default for ProductsSettings {
    fn default() -> Self {
        ProductsSettings {
            enabled: true,
            refresh: defaults::LICENCE_PRODUCTS_REFRESH.value,
            retry: Duration::from_secs(300),
        }
    }
}

impl Worker {
    /// Fetches the product list once and stores it; the number of products stored.
    pub async fn refresh_licence_products(&self) -> Result<usize, String> {
        let api = self
            .licensing
            .as_ref()
            .ok_or_else(|| "the Licensing API client could not be built".to_owned())?;
        let products = api
            .product_families(&mut Vec::new())
            .await
            .map_err(|e| e.to_string())?;
        if products.is_empty() {
            return Err("GET /product-families listed no product".to_owned());
        }
        let rows: Vec<(String, String, String)> = products
            .into_iter()
            .map(|p| (p.slug, p.name, p.family))
            .collect();
        self.store
            .replace_licence_products(&rows)
            .await
            .map_err(|e| Chain(&e).to_string())?;
        Ok(rows.len())
    }

    /// `run`'s product list: at start, then every `refresh` (`retry` after a failure).
    pub(in crate::worker) async fn licence_products_loop(&self, shutdown: CancellationToken) {
        let every = self.settings.licence_products;
        while every.enabled && !shutdown.is_cancelled() {
            // Its call counts among the worker's calls in flight (`JETPACK_CONCURRENCY`).
            let fetch = async {
                let _slot = self.slots.call().await;
                self.refresh_licence_products().await
            };
            let fetched = tokio::select! {
                () = shutdown.cancelled() => break,
                fetched = fetch => fetched,
            };
            let wait = match fetched {
                Ok(n) => {
                    tracing::debug!(products = n, "licence products fetched");
                    every.refresh
                }
                Err(error) => {
                    tracing::warn!(%error, "could not fetch the licence products; trying again later");
                    every.retry
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
