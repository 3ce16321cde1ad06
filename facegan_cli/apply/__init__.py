"""Applying a trained model to inputs: sampling a generator, editing faces (translating images next)."""
