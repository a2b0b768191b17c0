"""Convolution arithmetic: output sizes, paddings and parameter counts as formulas on integers or sympy symbols."""
