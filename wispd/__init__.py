"""wispd: a production daemon that runs Python trading strategies 24/7, one supervised process each."""

__version__ = "0.1.0"
