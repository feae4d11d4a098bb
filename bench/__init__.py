"""facebench: benchmark harness for synthetic face-recognition training sets."""

__version__ = "0.1.0"
