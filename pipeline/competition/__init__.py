"""The rules of the game: run-length encoding, the competition metric and coverage classes (pure numpy)."""
