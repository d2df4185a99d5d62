"""Data: the Kaggle layout (reader, synthetic writer), the validated cache, folds and the torch dataset."""
