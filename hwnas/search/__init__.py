"""The search engine: supernet, hypernetwork, latency-weighted cost, data, training, family."""
