"""Training localizers through Ray Train (TorchTrainer, V2 API)."""
