"""Models: the smp U-Net factory and the plastic head (the only module that knows plasticity's insides)."""
