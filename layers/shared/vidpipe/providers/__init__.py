"""Provider adapters: the only modules that speak HTTP to AI providers."""
