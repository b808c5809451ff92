"""The execution plane: executors that validate, risk-check, journal and then order (paper or live)."""
