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
    /// Between two successful fetches.
    pub refresh: Duration,
    /// After a failed fetch.
    pub retry: Duration,
}

impl Default for ProductsSettings {
    fn default() -> Self {
        ProductsSettings {
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
        while !shutdown.is_cancelled() {
            let wait = match self.refresh_licence_products().await {
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
