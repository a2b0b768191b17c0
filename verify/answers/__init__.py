"""Answer checking: safe parsing, comparison per kind, grading of files and classes."""
