"""Live trading through ccxt.pro: one exchange instance per account, driven from its own asyncio thread."""
