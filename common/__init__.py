"""Cross-cutting helpers: user-facing errors, atomic output, configs, synthetic data."""
