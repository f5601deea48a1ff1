"""The reference controller and its deliberately broken variants."""
