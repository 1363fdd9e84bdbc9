"""SyntheticAV."""
