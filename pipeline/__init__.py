"""plastic-salt: a TGS Salt Identification pipeline whose U-Nets end in a plastic (Hebbian) head."""

import os

# Never ask the network at import time (albumentations' version check, the HF hub).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"
