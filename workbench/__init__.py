"""Research workbench for multimedia intake of emergency (112) reports."""

__version__ = "0.1.0"
