"""The quality benchmark (issue 6): see __main__.py."""
