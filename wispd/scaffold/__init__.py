"""Project scaffolding: `wispctl init DIR` and `wispctl new strategy NAME`."""
