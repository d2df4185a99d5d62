"""Evaluation: the competition score of submissions and OOF predictions, and the run report."""
