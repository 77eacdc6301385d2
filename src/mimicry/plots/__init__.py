"""Figures: the paper's Figures 1-3 and the sensitivity and multiverse figures of the
study analysed (`figures`), the per-participant and group quality-control figures
(`qc_figures`), and the one style and save helper both use (`style`).
"""
