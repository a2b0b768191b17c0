"""Rendering: markdown reports (pure functions of the results), the rich console, and plots."""
