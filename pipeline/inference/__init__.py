"""Inference: TTA fold-ensemble test probabilities, OOF-tuned post-processing, and the submission file."""
