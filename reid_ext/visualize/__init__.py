"""Visualisation commands (``python -m reid_ext.visualize.<name>``): pictures of what a model does."""
