"""Configuration: one TOML file, validated completely before anything starts."""

from wispd.config.loader import EX_CONFIG, load_config
from wispd.config.model import ChildSpec, Config, DaemonConfig, Limits, RestartPolicy
from wispd.config.schema import ConfigError, ConfigIssue

__all__ = [
    "EX_CONFIG", "ChildSpec", "Config", "ConfigError", "ConfigIssue", "DaemonConfig", "Limits", "RestartPolicy",
    "load_config",
]
