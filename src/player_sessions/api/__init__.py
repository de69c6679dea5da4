"""The HTTP layer: thin routes that translate requests to use cases and results to JSON."""
