"""BAM! Born-Again Multi-Task Networks in Keras 3 / TensorFlow."""
