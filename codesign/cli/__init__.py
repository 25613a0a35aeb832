"""Command-line interface (``codesign``): thin commands over the library."""
