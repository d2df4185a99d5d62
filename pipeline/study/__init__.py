"""Studies built from the stages: the plasticity ablation."""
