"""Frequentist statistics: the linear mixed models of the aggregated cells (one per
muscle), their likelihood-ratio tests and contrasts, and the decision rules that turn an
interval into a verdict.
"""
