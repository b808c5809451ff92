"""The market-data plane: one ingestor process per exchange (ccxt.pro or the built-in sim)."""
