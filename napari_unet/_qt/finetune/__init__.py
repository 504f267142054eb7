"""The Fine-tune dock widget: what it learns from, the training job, the loss plot, the results."""
